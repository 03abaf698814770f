// A plain <textarea> with line numbers and error marks. The marks are drawn on a backdrop
// behind the (transparent) textarea, so typing, selection and screen readers behave natively.
import { useRef } from 'preact/hooks';
import { html } from '../html.js';

/** The character offset of a 1-based line and column, clamped into the text. */
function offsetOf(text, line, column) {
  const lines = text.split('\n');
  let offset = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length - 1); i++) offset += lines[i].length + 1;
  const current = lines[Math.min(line, lines.length) - 1] ?? '';
  return offset + Math.max(0, Math.min(column - 1, current.length));
}

function segments(text, marks) {
  const ranges = marks
    .filter((m) => m.line !== undefined)
    .map((m) => {
      const start = offsetOf(text, m.line, m.column ?? 1);
      const token = m.token && text.startsWith(m.token, start) ? m.token.length : 1;
      return [start, Math.min(text.length, start + token)];
    })
    .sort((a, b) => a[0] - b[0]);
  const parts = [];
  let at = 0;
  for (const [start, end] of ranges) {
    if (start < at) continue;
    parts.push(text.slice(at, start));
    // A mark past the last character still needs something to show: a space.
    parts.push(html`<mark>${text.slice(start, end) || ' '}</mark>`);
    at = Math.max(end, start);
  }
  parts.push(text.slice(at));
  return parts;
}

export function CodeEditor({ id, value, onInput, marks = [], minRows = 6, describedBy, readOnly = false, placeholder }) {
  const backdrop = useRef(null);
  const lineCount = value.split('\n').length;
  const errorLines = new Set(marks.map((m) => m.line));
  const rows = Math.max(minRows, lineCount);
  return html`<div class=${'code' + (marks.length ? ' code-invalid' : '')}>
    <div class="code-gutter" aria-hidden="true">
      ${Array.from({ length: rows }, (_, i) =>
        html`<div class=${errorLines.has(i + 1) ? 'gutter-error' : ''}>${errorLines.has(i + 1) ? '✕ ' : ''}${i < lineCount ? i + 1 : ''}</div>`,
      )}
    </div>
    <div class="code-body">
      <pre class="code-backdrop" aria-hidden="true" ref=${backdrop}>${segments(value, marks)}${'\n '}</pre>
      <textarea
        id=${id}
        class="code-input"
        rows=${rows}
        wrap="off"
        spellcheck="false"
        autocomplete="off"
        autocapitalize="off"
        readOnly=${readOnly}
        placeholder=${placeholder}
        aria-invalid=${marks.length ? 'true' : undefined}
        aria-describedby=${describedBy}
        value=${value}
        onInput=${(e) => onInput(e.currentTarget.value)}
        onScroll=${(e) => {
          if (backdrop.current) backdrop.current.scrollLeft = e.currentTarget.scrollLeft;
        }}
      ></textarea>
    </div>
  </div>`;
}
