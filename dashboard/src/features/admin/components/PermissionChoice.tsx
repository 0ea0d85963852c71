import { PERMISSIONS, type Permission } from '../types';

const MEANING: Record<Permission, string> = {
  read: 'read: view everything',
  write: 'write: change resources, budgets and alerts',
  admin: 'admin: manage keys and users',
};

export interface PermissionChoiceProps {
  value: Permission[];
  onChange: (permissions: Permission[]) => void;
}

/** The permissions a key or user gets, as checkboxes with what each one allows. */
export function PermissionChoice({ value, onChange }: PermissionChoiceProps) {
  return (
    <fieldset className="admin-permissions">
      <legend>Permissions</legend>
      {PERMISSIONS.map((permission) => (
        <label key={permission}>
          <input
            type="checkbox"
            checked={value.includes(permission)}
            onChange={(e) =>
              onChange(
                e.target.checked
                  ? PERMISSIONS.filter((p) => p === permission || value.includes(p))
                  : value.filter((p) => p !== permission),
              )
            }
          />
          {MEANING[permission]}
        </label>
      ))}
    </fieldset>
  );
}
