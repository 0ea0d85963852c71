export { ResourceExplorer } from './components/ResourceExplorer';
export { ResourceList } from './components/ResourceList';
export type { Resource } from './types';
