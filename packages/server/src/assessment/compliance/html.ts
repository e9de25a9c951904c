/**
 * The compliance report as one self-contained HTML page an assessor can archive: no script, no
 * external resource, every value escaped, its one style sheet allowed by hash in a
 * Content-Security-Policy that the page carries itself (and the API repeats as a header).
 */
import { createHash } from 'node:crypto';
import type { EvidenceItem, Outcome } from './etsi-en-303-645.js';
import type { ComplianceReport, OutcomeCounts, ProvisionReport } from './report.js';

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#1a1a1a;padding:0 1rem}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:2px solid #333}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #bbb;padding:.35rem .5rem;vertical-align:top;text-align:left}th{background:#eee}
.met{color:#0a5d1e;font-weight:600}.attention{color:#8a1c00;font-weight:600}.brand{color:#1f3d7a;font-weight:600}
ul{margin:.2rem 0;padding-left:1.1rem}.ok-false{color:#8a1c00}.ok-true{color:#0a5d1e}small{color:#555}`;

/** The CSP source of the page's style sheet. */
export const REPORT_STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;
export const REPORT_CSP = `default-src 'none'; style-src ${REPORT_STYLE_HASH}; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

const OUTCOME_WORDS: Record<Outcome, string> = { met: 'met by the platform', attention: 'needs attention', brand: 'brand’s part' };

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function evidenceList(items: EvidenceItem[]): string {
  if (items.length === 0) return '<small>none</small>';
  return `<ul>${items
    .map(
      (e) =>
        `<li class="ok-${e.ok === undefined ? 'none' : String(e.ok)}">${escapeHtml(e.kind)}: <b>${escapeHtml(e.name)}</b>${
          e.value === null ? '' : ` = ${escapeHtml(e.value)}`
        }${e.ok === false ? ' (gap)' : ''}</li>`,
    )
    .join('')}</ul>`;
}

function provisionRow(p: ProvisionReport): string {
  return `<tr id="p-${escapeHtml(p.id)}"><td><b>${escapeHtml(p.id)}</b><br><small>${escapeHtml(p.status)}${p.conditional ? ' (conditional)' : ''}</small></td>
<td>${escapeHtml(p.summary)}<br><small>${escapeHtml(p.clause)} ${escapeHtml(p.clauseTitle)}</small></td>
<td class="${p.outcome}">${escapeHtml(OUTCOME_WORDS[p.outcome])}</td>
<td>${p.platform === null ? '<small>device or manufacturer only</small>' : escapeHtml(p.platform)}${evidenceList(p.evidence)}</td>
<td>${p.brand ? escapeHtml(p.brand) : '<small>nothing further</small>'}</td></tr>`;
}

function summaryRow(label: string, c: OutcomeCounts): string {
  return `<tr><th>${label}</th><td>${c.total}</td><td class="met">${c.met}</td><td class="attention">${c.attention}</td><td class="brand">${c.brand}</td></tr>`;
}

export function renderComplianceHtml(report: ComplianceReport): string {
  const tests = report.build.tests;
  const provisionsTable = (status: 'M' | 'R') =>
    `<table><thead><tr><th>Provision</th><th>Requirement</th><th>Status</th><th>The platform, with evidence</th><th>The brand must</th></tr></thead><tbody>
${report.provisions
  .filter((p) => p.status === status)
  .map(provisionRow)
  .join('\n')}</tbody></table>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(REPORT_CSP)}">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(report.standard)} report: ${escapeHtml(report.organization.name)}</title>
<style>${STYLE}</style></head><body>
<h1>${escapeHtml(report.standard)} ${escapeHtml(report.version)}: ${escapeHtml(report.organization.name)}</h1>
<p>Organization <b>${escapeHtml(report.organization.slug)}</b> · generated ${escapeHtml(report.generatedAt)} · Bulwark ${escapeHtml(report.build.version)} · ${
    tests
      ? `tests of this build (${escapeHtml(tests.generatedAt)}, commit ${escapeHtml(tests.commit ?? 'unknown')}${tests.complete ? '' : ', partial run'}): ${tests.passed} passed, ${tests.failed} failed, ${tests.skipped} skipped`
      : 'no test results shipped with this build'
  }</p>
<table><thead><tr><th></th><th>provisions</th><th>met by the platform</th><th>need attention</th><th>brand’s part</th></tr></thead><tbody>
${summaryRow('Mandatory', report.summary.mandatory)}
${summaryRow('Recommended', report.summary.recommended)}</tbody></table>
<h2>Mandatory provisions</h2>
${provisionsTable('M')}
<h2>Recommended provisions</h2>
${provisionsTable('R')}
<h2>Questions a brand asks its platform</h2>
<table><thead><tr><th>Question</th><th>Status</th><th>Answer, with evidence</th></tr></thead><tbody>
${report.vetting
  .map(
    (q) =>
      `<tr id="q-${escapeHtml(q.id)}"><td>${escapeHtml(q.question)}</td><td class="${q.outcome}">${escapeHtml(OUTCOME_WORDS[q.outcome])}</td><td>${escapeHtml(q.answer)}${evidenceList(q.evidence)}</td></tr>`,
  )
  .join('\n')}</tbody></table>
</body></html>
`;
}
