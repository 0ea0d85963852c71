import { useId, type ReactElement, type ReactNode } from 'react';

export interface FieldProps {
  label: ReactNode;
  /** Renders the control with the id the label points at. */
  children: (id: string) => ReactElement;
  className?: string;
}

/** A label above its control, tied by id so the control's accessible name is the label alone. */
export function Field({ label, children, className }: FieldProps) {
  const id = useId();
  return (
    <div className={`field ${className ?? ''}`}>
      <label htmlFor={id}>{label}</label>
      {children(id)}
    </div>
  );
}
