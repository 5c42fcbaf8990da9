import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  InputDialog,
  showDialog
} from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { Poll } from '@lumino/polling';

import { restBackend } from './api';
import { AskDialogs, PromptDialogs } from './dialog';
import { Hy2faModel } from './model';
import { Hy2faSidebar } from './sidebar';
import { Hy2faStatus } from './statusbar';
import {
  ASK_EVENT_SCHEMA,
  CommandIDs,
  EVENT_SCHEMA,
  IAskEvent,
  IConnectionEvent,
  SIDEBAR_ID
} from './tokens';
import { FRONTEND_VERSION } from './version';

const PLUGIN_ID = 'hy2fa-lab:plugin';

/** Whether a `%hy2fa connect` widget on this page already shows that connection's prompt. */
function widgetShows(name: string): boolean {
  const hex = Array.from(new TextEncoder().encode(name))
    .map(byte => byte.toString(16).padStart(2, '0'))
    .join('');
  const node = document.querySelector<HTMLElement>(`.hy2fa-for-${hex}`);
  return node !== null && node.offsetParent !== null;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'A sidebar, dialog and status bar item for 2FA SSH ControlMaster connections.',
  autoStart: true,
  requires: [ILabShell],
  optional: [ICommandPalette, IStatusBar, ISettingRegistry, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    palette: ICommandPalette | null,
    statusBar: IStatusBar | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load('hy2fa_lab');
    const model = new Hy2faModel(restBackend, FRONTEND_VERSION);
    const settings = { pollSeconds: 10, dialogs: true, askDialogs: true };

    const sidebar = new Hy2faSidebar(model, translator ?? nullTranslator);
    shell.add(sidebar, 'left', { rank: 900 });

    const openSidebar = (): void => {
      shell.activateById(SIDEBAR_ID);
    };

    new PromptDialogs(model, {
      sidebarShows: () => sidebar.isVisible,
      widgetShows: widgetShows,
      enabled: () => settings.dialogs,
      label: name => model.clusters.find(c => c.name === name)?.label || name
    });
    // Questions of the ssh that kernels run: a dialog wherever the person is.
    const askDialogs = new AskDialogs(model, {
      enabled: () => settings.askDialogs,
      trans
    });

    // Events first; the poll repairs anything missed (and notices expired masters).
    app.serviceManager.events.stream.connect((_, event) => {
      if (event.schema_id === EVENT_SCHEMA) {
        model.applyEvent(event as unknown as IConnectionEvent);
      } else if (event.schema_id === ASK_EVENT_SCHEMA) {
        void model.applyAskEvent(event as unknown as IAskEvent);
      }
    });
    const poll = new Poll({
      factory: () => model.refresh(),
      frequency: {
        interval: settings.pollSeconds * 1000,
        backoff: true,
        max: 300 * 1000
      },
      name: 'hy2fa-lab:connections',
      standby: 'when-hidden'
    });
    void model.refresh();

    app.commands.addCommand(CommandIDs.openSidebar, {
      label: trans.__('Show 2FA Connections'),
      execute: openSidebar
    });
    app.commands.addCommand(CommandIDs.connect, {
      label: trans.__('Connect to a 2FA Cluster…'),
      execute: async args => {
        let cluster = args.cluster as string | undefined;
        if (!cluster) {
          await model.refresh();
          const result = await InputDialog.getItem({
            title: trans.__('Connect to which cluster?'),
            items: model.clusters.map(c => c.name)
          });
          if (!result.button.accept || !result.value) {
            return;
          }
          cluster = result.value;
        }
        if (!settings.dialogs) {
          openSidebar();
        }
        await model.connect(cluster);
      }
    });
    app.commands.addCommand(CommandIDs.disconnect, {
      label: trans.__('Disconnect a 2FA Cluster…'),
      execute: async args => {
        let name = args.name as string | undefined;
        if (!name) {
          await model.refresh();
          const live = model.connections
            .filter(c => c.state !== 'failed' && c.state !== 'disconnected')
            .map(c => c.name);
          if (live.length === 0) {
            await showDialog({
              title: trans.__('2FA connections'),
              body: trans.__('No 2FA connection is open.'),
              buttons: [Dialog.okButton()]
            });
            return;
          }
          const result = await InputDialog.getItem({
            title: trans.__('Disconnect which connection?'),
            items: live
          });
          if (!result.button.accept || !result.value) {
            return;
          }
          name = result.value;
        }
        await model.disconnect(name);
      }
    });
    if (palette) {
      const category = trans.__('2FA Connections');
      for (const command of [
        CommandIDs.connect,
        CommandIDs.disconnect,
        CommandIDs.openSidebar
      ]) {
        palette.addItem({ command, category });
      }
    }

    if (statusBar) {
      statusBar.registerStatusItem(PLUGIN_ID, {
        item: new Hy2faStatus(model, openSidebar, trans),
        align: 'left',
        rank: 900
      });
    }

    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(loaded => {
          const apply = (): void => {
            settings.pollSeconds = loaded.get('pollSeconds')
              .composite as number;
            settings.dialogs = loaded.get('dialogs').composite as boolean;
            settings.askDialogs = loaded.get('askDialogs').composite !== false;
            poll.frequency = {
              ...poll.frequency,
              interval: settings.pollSeconds * 1000
            };
            askDialogs.update();
          };
          apply();
          loaded.changed.connect(apply);
        })
        .catch(reason => {
          console.warn('hy2fa-lab: could not load settings', reason);
        });
    }
  }
};

export default plugin;
