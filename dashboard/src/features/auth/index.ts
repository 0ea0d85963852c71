export { LoginPage } from './components/LoginPage';
export { LogoutButton } from './components/LogoutButton';
export { useSessionBootstrap } from './hooks/useSessionBootstrap';
