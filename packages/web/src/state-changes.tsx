/**
 * The changes a desired-state edit makes, as a table to read before sending (the console's device
 * page and the companion app's Settings card): each leaf's path, its value now and after.
 */
import { Table } from './kit';
import { shown, type Change } from './merge-patch';

export function ChangesTable(props: { changes: Change[] }) {
  return (
    <Table label="Changes to send" caption="Each change: the path, its value now and after" columns={['Path', 'Now', 'After']}>
      {props.changes.map((change) => (
        <tr key={change.path} data-testid="diff-row">
          <th scope="row">
            <code>{change.path}</code>
          </th>
          <td>
            <del>{shown(change.before)}</del>
          </td>
          <td>
            <ins>{change.after === undefined ? '(removed)' : shown(change.after)}</ins>
          </td>
        </tr>
      ))}
    </Table>
  );
}
