import { Component, type ReactNode } from 'react';

export interface ErrorBoundaryProps {
  children: ReactNode;
  /** What could not be shown, in the user's words, e.g. "This view could not be shown". */
  title: string;
  /** Runs before the children are tried again, e.g. to drop the answers that broke them. */
  onReset?: () => void;
}

interface ErrorBoundaryState {
  failed: boolean;
  message: string | null;
}

function messageOf(error: unknown): string | null {
  if (error instanceof Error) return error.message;
  return typeof error === 'string' ? error : null;
}

/**
 * Catches a render error below it (typically an answer in a form the screen does not expect) and
 * shows a readable message with a "Try again" button instead of an empty page.
 */
export class ErrorBoundary extends Component<ErrorBoundaryProps, ErrorBoundaryState> {
  override state: ErrorBoundaryState = { failed: false, message: null };

  static getDerivedStateFromError(error: unknown): ErrorBoundaryState {
    return { failed: true, message: messageOf(error) };
  }

  private readonly tryAgain = () => {
    this.props.onReset?.();
    this.setState({ failed: false, message: null });
  };

  override render() {
    if (!this.state.failed) return this.props.children;
    return (
      <div role="alert" className="error-message error-boundary">
        <p className="error-message__title">{this.props.title}</p>
        <p className="error-message__detail">
          It received data it could not display. Try again; if this keeps happening, report it with the details below.
        </p>
        {this.state.message && (
          <details>
            <summary>Details</summary>
            <code>{this.state.message}</code>
          </details>
        )}
        <button type="button" className="button" onClick={this.tryAgain}>
          Try again
        </button>
      </div>
    );
  }
}
