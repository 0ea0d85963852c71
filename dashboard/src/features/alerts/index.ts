export { AlertFeed } from './components/AlertFeed';
export { AlertsPage } from './components/AlertsPage';
