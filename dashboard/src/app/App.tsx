export function App() {
  return <main>CloudOps</main>;
}
