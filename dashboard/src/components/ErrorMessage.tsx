import { ApiError } from '@/lib/api';

export interface ErrorMessageProps {
  error: unknown;
  /** Short text placed before the error's own title, e.g. "Could not load resources". */
  context?: string;
}

function describe(error: unknown): { title: string; detail?: string; requestId?: string; errors?: ApiError['errors'] } {
  if (error instanceof ApiError) {
    return { title: error.title, detail: error.detail, requestId: error.requestId, errors: error.errors };
  }
  if (error instanceof Error) return { title: 'Something went wrong', detail: error.message };
  if (typeof error === 'string') return { title: 'Something went wrong', detail: error };
  return { title: 'Something went wrong' };
}

/** Shows an API failure readably: its title, detail, field errors and the request id for support. */
export function ErrorMessage({ error, context }: ErrorMessageProps) {
  const { title, detail, requestId, errors } = describe(error);
  return (
    <div role="alert" className="error-message">
      <p className="error-message__title">
        {context ? `${context}: ` : ''}
        {title}
      </p>
      {detail && <p className="error-message__detail">{detail}</p>}
      {errors && errors.length > 0 && (
        <ul className="error-message__fields">
          {errors.map((item, index) => (
            <li key={`${item.field}-${index}`}>
              {item.field ? <strong>{item.field}</strong> : null}
              {item.field ? ': ' : ''}
              {item.message}
            </li>
          ))}
        </ul>
      )}
      {requestId && (
        <p className="error-message__request">
          Request id: <code>{requestId}</code>
        </p>
      )}
    </div>
  );
}
