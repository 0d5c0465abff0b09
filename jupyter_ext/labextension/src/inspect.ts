// Inspect output as a collapsible JSON tree (<details> per object/array).
import { Clipboard, MainAreaWidget } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { el } from './format';

function leaf(value: unknown): HTMLElement {
  const kind = value === null ? 'null' : typeof value;
  return el('span', { class: `pj-json-${kind}` }, JSON.stringify(value));
}

export function jsonTree(value: unknown, key?: string, open = true): HTMLElement {
  const label = key === undefined ? null : el('span', { class: 'pj-json-key' }, `${key}: `);
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value)
      ? value.map((v, i) => [String(i), v] as [string, unknown])
      : Object.entries(value as Record<string, unknown>);
    const brackets = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
    const details = el(
      'details',
      { class: 'pj-json-node' },
      el('summary', {}, label, el('span', { class: 'pj-json-count' }, brackets))
    );
    details.open = open;
    for (const [k, v] of entries) {
      details.append(jsonTree(v, k, false));
    }
    return details;
  }
  return el('div', { class: 'pj-json-leaf' }, label, leaf(value));
}

export function inspectWidget(title: string, data: unknown): MainAreaWidget<Widget> {
  const content = new Widget();
  content.addClass('pj-inspect');
  const copy = el('button', { class: 'pj-btn' }, 'Copy JSON');
  copy.addEventListener('click', () => Clipboard.copyToSystem(JSON.stringify(data, null, 2)));
  content.node.append(el('div', { class: 'pj-logs-bar' }, copy), jsonTree(data));
  const widget = new MainAreaWidget({ content });
  widget.title.label = `Inspect: ${title}`;
  widget.title.closable = true;
  return widget;
}
