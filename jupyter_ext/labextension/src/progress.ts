// A main-area view of a streamed action's lines (build output, backup progress).
import { MainAreaWidget } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { el } from './format';

export function progressWidget(title: string): { widget: MainAreaWidget<Widget>; show: (line: any) => void } {
  const content = new Widget();
  content.addClass('pj-progress');
  const status = el('div', { class: 'pj-progress-status', 'data-state': 'running' }, 'running…');
  const pre = el('pre', { class: 'pj-logs-text' });
  content.node.append(status, pre);
  const widget = new MainAreaWidget({ content });
  widget.title.label = title;
  widget.title.closable = true;
  const show = (line: any) => {
    if (line.done) {
      status.textContent = 'done';
      status.dataset.state = 'done';
      return;
    }
    let text = '';
    if (line.stream !== undefined) {
      text = String(line.stream);
    } else if (line.error) {
      text = `ERROR: ${line.error}\n`;
      status.textContent = 'failed';
      status.dataset.state = 'failed';
    } else if (line.aux) {
      text = `result: ${JSON.stringify(line.aux)}\n`;
    } else if (line.status) {
      const p = line.progress;
      const count = p && p.total ? ` ${p.current}/${p.total}` : '';
      text = `${line.status}${count}${line.id ? ' ' + line.id : ''}\n`;
    } else {
      text = JSON.stringify(line) + '\n';
    }
    pre.append(text);
    pre.scrollTop = pre.scrollHeight;
  };
  return { widget, show };
}
