export { ImportsPage } from './components/ImportsPage';
