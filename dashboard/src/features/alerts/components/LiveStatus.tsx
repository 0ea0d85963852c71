import type { StreamStatus } from '../api/event-stream';

function describe(stream: StreamStatus): { text: string; tone: string } {
  switch (stream.state) {
    case 'open':
      return { text: 'Live: new alerts appear here as they happen.', tone: 'ok' };
    case 'connecting':
      return { text: 'Connecting to live updates…', tone: 'info' };
    case 'reconnecting': {
      const seconds = Math.max(1, Math.round((stream.retryInMs ?? 0) / 1000));
      return { text: `Connection lost; reconnecting to live updates in ${seconds} s…`, tone: 'warn' };
    }
    case 'closed':
      return {
        text: 'Updates stopped: sign in again, then reload the page.',
        tone: 'bad',
      };
  }
}

/** Whether the list is live, reconnecting or stopped; announced politely to screen readers. */
export function LiveStatus({ stream }: { stream: StreamStatus }) {
  const { text, tone } = describe(stream);
  return (
    <p role="status" className={`alerts-live alerts-live--${tone}`}>
      <span className="alerts-live__dot" aria-hidden="true" />
      {text}
    </p>
  );
}
