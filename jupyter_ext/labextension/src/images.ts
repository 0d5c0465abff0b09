// The images section: list, tag, remove, prune (builds start from the file browser).
import { InputDialog, Notification } from '@jupyterlab/apputils';

import { request } from './api';
import { ago, button, bytes, el, shortId } from './format';
import { attempt, confirm, Info, reload } from './model';
import { Section } from './section';

export class ImagesSection extends Section {
  info: Info | null = null;

  constructor() {
    super('images', 'Images');
    this.tools.append(
      button('Prune', 'Remove dangling images', async () => {
        if (!(await confirm('Prune images?', 'Remove every dangling (untagged, unused) image.', 'Prune'))) {
          return;
        }
        const result = await attempt('prune', () => request('images/prune', 'POST'));
        reload('images');
        if (result) {
          const n = (result.ImagesDeleted || []).length;
          Notification.success(`Pruned ${n} image(s), ${bytes(result.SpaceReclaimed || 0)} reclaimed`, {
            autoClose: 4000
          });
        }
      }, 'pj-danger')
    );
  }

  update(list: any[]): void {
    const rows = list
      .slice()
      .sort((a, b) => (b.Created || 0) - (a.Created || 0))
      .map(image => this.row(image));
    this.body.replaceChildren(...(rows.length ? rows : [el('div', { class: 'pj-empty' }, 'No images.')]));
    this.setCount(list.length);
    this.tools.querySelector<HTMLElement>('[data-action="Prune"]')!.hidden = !this.allowed('prune');
  }

  private allowed(action: string): boolean {
    return !this.info || this.info.actions.includes(action);
  }

  private row(image: any): HTMLElement {
    const tags: string[] = (image.RepoTags || []).filter((t: string) => t !== '<none>:<none>');
    const ref = tags[0] || image.Id;
    const label = tags.length ? tags.join(', ') : `<none> ${shortId(image.Id)}`;
    const actions = el(
      'div',
      { class: 'pj-row-actions' },
      button('Tag', `Give ${label} another name`, async () => {
        const answer = await InputDialog.getText({ title: `Tag ${label}`, label: 'New name (repo:tag)', placeholder: 'myimage:v1' });
        if (!answer.button.accept || !answer.value) {
          return;
        }
        const value = answer.value.trim();
        const colon = value.lastIndexOf(':');
        const hasTag = colon > value.lastIndexOf('/');
        const body = { repo: hasTag ? value.slice(0, colon) : value, tag: hasTag ? value.slice(colon + 1) : 'latest' };
        await attempt('tag', () => request(`images/${encodeURIComponent(ref)}/tag`, 'POST', body));
        reload('images');
      })
    );
    if (this.allowed('remove')) {
      actions.append(
        button('Remove', `Remove ${label}`, async () => {
          if (await confirm(`Remove ${ref}?`, `Remove the image ${ref}.`, 'Remove')) {
            await attempt(`remove ${ref}`, () => request(`images/${encodeURIComponent(ref)}`, 'DELETE'));
            reload('images');
          }
        }, 'pj-danger')
      );
    }
    return el(
      'div',
      { class: 'pj-row pj-image-row', 'data-id': image.Id, 'data-ref': ref },
      // every name readable: several tags wrap instead of ending in an ellipsis
      el('div', { class: 'pj-row-main' }, el('span', { class: 'pj-name pj-wrap', title: label }, label)),
      el(
        'div',
        { class: 'pj-row-sub' },
        el('span', {}, shortId(image.Id)),
        el('span', {}, bytes(image.Size)),
        el('span', {}, ago(image.Created))
      ),
      actions
    );
  }
}
