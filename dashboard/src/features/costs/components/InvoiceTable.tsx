import { useQuery } from '@tanstack/react-query';
import { EmptyState, ErrorMessage, Loading } from '@/components';
import { ApiError } from '@/lib/api';
import { formatMoney } from '@/lib/format';
import { fetchInvoices } from '../api/costs';

/** Invoices from imported billing data; an empty state while the server has none (or no endpoint). */
export function InvoiceTable() {
  const invoices = useQuery({ queryKey: ['costs', 'invoices'], queryFn: fetchInvoices });
  const missing = invoices.error instanceof ApiError && invoices.error.status === 404;
  return (
    <section className="card" aria-labelledby="invoices-heading">
      <h2 id="invoices-heading">Invoices</h2>
      {invoices.isPending && <Loading label="Loading invoices…" />}
      {invoices.isError && !missing && <ErrorMessage error={invoices.error} context="Could not load invoices" />}
      {(missing || (invoices.data && invoices.data.length === 0)) && (
        <EmptyState title="No invoices yet">Invoices appear here once billing data with invoice ids is imported.</EmptyState>
      )}
      {invoices.data && invoices.data.length > 0 && (
        <div className="table-wrap">
          <table className="table" aria-label="Invoices">
            <thead>
              <tr>
                <th scope="col">Invoice</th>
                <th scope="col">Billing account</th>
                <th scope="col">Period</th>
                <th scope="col" className="num">
                  Billed total
                </th>
              </tr>
            </thead>
            <tbody>
              {invoices.data.map((invoice) => (
                <tr key={`${invoice.invoice_id}-${invoice.billing_account_id}-${invoice.currency}`}>
                  <td>{invoice.invoice_id}</td>
                  <td>{invoice.billing_account_name ?? invoice.billing_account_id}</td>
                  <td>
                    {invoice.billing_period_start.slice(0, 10)} – {invoice.billing_period_end.slice(0, 10)}
                  </td>
                  <td className="num">{formatMoney(invoice.billed_total, invoice.currency)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
