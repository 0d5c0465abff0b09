// pyjail-jupyter: the left-sidebar panel, its settings, commands and the file-browser
// entry that builds an image from a Dockerfile.
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, InputDialog } from '@jupyterlab/apputils';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';

import { request } from './api';
import { inspectWidget } from './inspect';
import { logsWidget } from './logs';
import { attempt, DEFAULT_OPTIONS, Hooks, Options, reload, streamed } from './model';
import { PyjailPanel } from './panel';
import { progressWidget } from './progress';

const PLUGIN_ID = 'pyjail-jupyter:plugin';

const ICON = new LabIcon({
  name: 'pyjail:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<rect x="3" y="4" width="18" height="16" rx="2" fill="none" stroke="#616161" stroke-width="2"/>' +
    '<rect x="7" y="4" width="2" height="16"/><rect x="11" y="4" width="2" height="16"/>' +
    '<rect x="15" y="4" width="2" height="16"/></g></svg>'
});

const DOCKERFILE = /(^|[./-])(Dockerfile|Containerfile)([./-]|$)/i;

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Containers, images, volumes and backups of a pyjail daemon in the sidebar.',
  autoStart: true,
  requires: [ILabShell],
  optional: [ISettingRegistry, INotebookTracker, IFileBrowserFactory, ICommandPalette, ILayoutRestorer],
  activate: async (
    app: JupyterFrontEnd,
    shell: ILabShell,
    registry: ISettingRegistry | null,
    notebooks: INotebookTracker | null,
    browsers: IFileBrowserFactory | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ) => {
    let options: Options = { ...DEFAULT_OPTIONS };
    let settings: ISettingRegistry.ISettings | null = null;

    const hooks: Hooks = {
      openLogs(id, name) {
        const existing = [...shell.widgets('main')].find(w => w.id === `pyjail-logs-${id.slice(0, 12)}`);
        if (existing) {
          shell.activateById(existing.id);
          return;
        }
        const widget = logsWidget(id, name);
        shell.add(widget, 'main', { mode: 'split-right' });
        shell.activateById(widget.id);
      },
      openInspect(title, data) {
        const widget = inspectWidget(title, data);
        shell.add(widget, 'main');
        shell.activateById(widget.id);
      },
      insertCell(code) {
        const panel = notebooks?.currentWidget;
        if (!panel) {
          return false;
        }
        NotebookActions.insertBelow(panel.content);
        const cell = panel.content.activeCell;
        if (!cell) {
          return false;
        }
        cell.model.sharedModel.setSource(code);
        shell.activateById(panel.id);
        return true;
      },
      openProgress(title) {
        const { widget, show } = progressWidget(title);
        shell.add(widget, 'main', { mode: 'split-bottom' });
        return show;
      },
      setOption(key, value) {
        options = { ...options, [key]: value };
        panel.applyOptions();
        void settings?.set(key, value as any);
      }
    };

    const panel = new PyjailPanel(hooks, () => options);
    panel.title.icon = ICON;
    panel.title.caption = 'pyjail: containers, images, volumes, backups';
    shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, 'pyjail-sidebar');

    let address: string | null = null;
    const apply = async (s: ISettingRegistry.ISettings) => {
      options = { ...DEFAULT_OPTIONS, ...(s.composite as any) };
      if (options.daemonAddress !== address) {
        const first = address === null;
        address = options.daemonAddress;
        // the server's own configuration stands until a user sets an address
        if (!first || address) {
          await attempt(`switch to daemon ${address || '(server default)'}`, () =>
            request('daemon', 'PUT', { host: address })
          );
          if (!first) {
            void panel.switchedDaemon();
          }
        }
      }
      panel.applyOptions();
    };
    if (registry) {
      try {
        settings = await registry.load(PLUGIN_ID);
        await apply(settings);
        settings.changed.connect(s => void apply(s));
      } catch (err) {
        console.warn('pyjail: settings not loaded', err);
      }
    }
    void panel.start();

    app.commands.addCommand('pyjail:open', {
      label: 'pyjail: Show containers',
      execute: () => shell.activateById(panel.id)
    });
    app.commands.addCommand('pyjail:refresh', {
      label: 'pyjail: Reload the sidebar',
      execute: () => panel.start()
    });

    const selectedDockerfile = (): string | null => {
      const browser = browsers?.tracker.currentWidget;
      if (!browser) {
        return null;
      }
      const item = Array.from(browser.selectedItems())[0];
      return item && item.type === 'file' && DOCKERFILE.test(item.name) ? item.path : null;
    };
    app.commands.addCommand('pyjail:build-dockerfile', {
      label: 'Build Image with pyjail…',
      caption: 'Build an image from this Dockerfile; its folder is the build context',
      isVisible: () => selectedDockerfile() !== null,
      execute: async args => {
        const path = (args.path as string) || selectedDockerfile();
        if (!path) {
          return;
        }
        let tag = args.tag as string | undefined;
        if (tag === undefined) {
          const folder = path.split('/').slice(-2, -1)[0] || 'image';
          const answer = await InputDialog.getText({
            title: `Build ${path}`,
            label: 'Tag the image as',
            text: `${folder.toLowerCase().replace(/[^a-z0-9._-]/g, '-')}:latest`
          });
          if (!answer.button.accept) {
            return;
          }
          tag = answer.value || undefined;
        }
        await streamed(hooks, `Build ${tag || path}`, 'images/build', { path, tag });
        reload('images');
      }
    });
    app.contextMenu.addItem({
      command: 'pyjail:build-dockerfile',
      selector: '.jp-DirListing-item[data-isdir="false"]',
      rank: 10
    });
    if (palette) {
      for (const command of ['pyjail:open', 'pyjail:refresh']) {
        palette.addItem({ command, category: 'pyjail' });
      }
    }
    // tests and benchmarks read render figures from here
    (window as any).pyjailSidebar = panel;
  }
};

export default plugin;
