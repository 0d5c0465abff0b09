// A collapsible sidebar section: a header (title, count, tools) and a body.
import { el } from './format';

export class Section {
  readonly node: HTMLElement;
  readonly body: HTMLElement;
  readonly tools: HTMLElement;
  private count: HTMLSpanElement;
  private error: HTMLElement;

  constructor(
    readonly key: string,
    title: string
  ) {
    this.count = el('span', { class: 'pj-count' });
    this.tools = el('span', { class: 'pj-tools' });
    const caret = el('span', { class: 'pj-caret' });
    const header = el(
      'div',
      { class: 'pj-section-header' },
      caret,
      el('span', { class: 'pj-section-title' }, title),
      this.count,
      this.tools
    );
    this.error = el('div', { class: 'pj-error' });
    this.error.hidden = true;
    this.body = el('div', { class: 'pj-section-body' });
    this.node = el('section', { class: 'pj-section', 'data-section': key }, header, this.error, this.body);
    header.addEventListener('click', ev => {
      if ((ev.target as HTMLElement).closest('.pj-tools')) {
        return;
      }
      this.node.classList.toggle('pj-collapsed');
    });
  }

  setCount(n: number): void {
    this.count.textContent = String(n);
  }

  showError(message: string | null): void {
    this.error.hidden = !message;
    this.error.textContent = message || '';
  }

  set visible(on: boolean) {
    this.node.hidden = !on;
  }
}
