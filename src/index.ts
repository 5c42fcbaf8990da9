import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';

import { RestBackend } from './api';
import { askPermission, BrowserNotifications } from './browsernotify';
import { addCommands, addToPalette } from './commands';
import { notifyConfigProblems } from './configproblems';
import { AskDialogs, PromptDialogs } from './dialog';
import { CHECK_SETUP_COMMAND } from './doctor';
import { EventStreamWatch } from './events';
import { Hy2faModel } from './model';
import { CertificateWarnings } from './certnotify';
import { LostNotifications } from './notify';
import { ClusterPrefs } from './prefs';
import { Hy2faSidebar } from './sidebar';
import { Hy2faStatus } from './statusbar';
import { IHy2faModel, SIDEBAR_ID } from './tokens';
import { FRONTEND_VERSION } from './version';

export * from './tokens';

const PLUGIN_ID = 'hy2fa-lab:plugin';

/** The settings of schema/plugin.json, with their defaults until they load. */
interface ISettings {
  pollSeconds: number;
  dialogs: boolean;
  askDialogs: boolean;
  browserNotifications: boolean;
}

/**
 * The 2FA connections: a sidebar, dialogs and a status bar item, and the model behind
 * them, which other extensions can require as `IHy2faModel`.
 */
const plugin: JupyterFrontEndPlugin<IHy2faModel> = {
  id: PLUGIN_ID,
  description:
    'A sidebar, dialog and status bar item for 2FA SSH ControlMaster connections.',
  autoStart: true,
  requires: [ILabShell],
  optional: [ICommandPalette, IStatusBar, ISettingRegistry, ITranslator],
  provides: IHy2faModel,
  activate
};

function activate(
  app: JupyterFrontEnd,
  shell: ILabShell,
  palette: ICommandPalette | null,
  statusBar: IStatusBar | null,
  settingRegistry: ISettingRegistry | null,
  translator: ITranslator | null
): IHy2faModel {
  const trans = (translator ?? nullTranslator).load('hy2fa_lab');
  const settings: ISettings = {
    pollSeconds: 10,
    dialogs: true,
    askDialogs: true,
    browserNotifications: false
  };
  // Events first; the model's poll repairs anything missed (and notices expired masters).
  // Whatever changed before the event subscription was live is asked for once it is.
  const eventsLive = new EventStreamWatch(app.serviceManager.events);
  const model = new Hy2faModel({
    backend: new RestBackend(app.serviceManager.serverSettings),
    frontendVersion: FRONTEND_VERSION,
    events: app.serviceManager.events.stream,
    eventsLive: eventsLive.opened,
    pollInterval: settings.pollSeconds * 1000
  });

  const prefs = new ClusterPrefs(model);
  const sidebar = new Hy2faSidebar(model, trans, prefs, () => {
    void app.commands.execute(CHECK_SETUP_COMMAND);
  });
  shell.add(sidebar, 'left', { rank: 900 });
  const openSidebar = (): void => {
    shell.activateById(SIDEBAR_ID);
  };
  const label = (name: string): string =>
    model.clusters.find(c => c.name === name)?.label || name;

  const askDialogs = addDialogs(model, sidebar, settings, trans);
  new LostNotifications(model, {
    label,
    onUnsupported: openSidebar,
    trans
  });
  // A certificate about to run out: a warning with Renew, once per certificate.
  new CertificateWarnings(model, { label, trans });
  // A question while this tab is hidden: a browser notification too (off by default).
  new BrowserNotifications(model, {
    enabled: () => settings.browserNotifications,
    label,
    trans,
    focus: () => {
      window.focus();
      if (!settings.dialogs) {
        openSidebar(); // where the question waits when no dialog pops up
      }
    }
  });
  // What of the server's c.Hy2faLab config is not used: said once, at start.
  void notifyConfigProblems(app.serviceManager.serverSettings, trans);
  addCommands(app, {
    model,
    trans,
    openSidebar,
    dialogs: () => settings.dialogs
  });
  if (palette) {
    addToPalette(palette, trans);
  }
  if (statusBar) {
    statusBar.registerStatusItem(PLUGIN_ID, {
      item: new Hy2faStatus(model, openSidebar, trans),
      align: 'left',
      rank: 900
    });
  }
  if (settingRegistry) {
    loadSettings(settingRegistry, settings, model, askDialogs, prefs, trans);
  }
  return model;
}

/**
 * The dialogs: a connection's prompt (unless the sidebar or a notebook widget shows it),
 * and the questions of kernels' ssh, wherever the person is.
 */
function addDialogs(
  model: Hy2faModel,
  sidebar: Hy2faSidebar,
  settings: ISettings,
  trans: TranslationBundle
): AskDialogs {
  new PromptDialogs(model, {
    sidebarShows: () => sidebar.isVisible,
    enabled: () => settings.dialogs,
    label: name => model.clusters.find(c => c.name === name)?.label || name,
    trans
  });
  return new AskDialogs(model, {
    enabled: () => settings.askDialogs,
    trans
  });
}

/** Apply the user's settings now and whenever they change. */
function loadSettings(
  registry: ISettingRegistry,
  settings: ISettings,
  model: Hy2faModel,
  askDialogs: AskDialogs,
  prefs: ClusterPrefs,
  trans: TranslationBundle
): void {
  registry
    .load(PLUGIN_ID)
    .then(loaded => {
      let first = true;
      const apply = (): void => {
        settings.pollSeconds = loaded.get('pollSeconds').composite as number;
        settings.dialogs = loaded.get('dialogs').composite as boolean;
        settings.askDialogs = loaded.get('askDialogs').composite !== false;
        const notify = loaded.get('browserNotifications').composite === true;
        if (notify && !settings.browserNotifications) {
          void allowNotifications(trans, first);
        }
        settings.browserNotifications = notify;
        first = false;
        model.pollInterval = settings.pollSeconds * 1000;
        askDialogs.update();
      };
      apply();
      loaded.changed.connect(apply);
      prefs.attach(loaded);
    })
    .catch(reason => {
      console.warn('hy2fa-lab: could not load settings', reason);
    });
}

/** Remembers, in this browser, that its permission to notify was asked for at start. */
const ASKED_KEY = 'hy2fa-lab:notification-permission-asked';

/**
 * Browser notifications were turned on: ask the browser's permission (it asks the person
 * once). At start, with the setting on from before, it is asked once per browser, so a
 * person who closed the browser's question is not asked at every load. A browser that
 * refuses is said in Lab, with what to do.
 */
async function allowNotifications(
  trans: TranslationBundle,
  atStart: boolean
): Promise<void> {
  if (atStart) {
    try {
      if (window.localStorage.getItem(ASKED_KEY)) {
        return;
      }
      window.localStorage.setItem(ASKED_KEY, '1');
    } catch {
      // no storage (a private window): ask
    }
  }
  const permission = await askPermission();
  if (permission === 'default') {
    // A browser that asks only from a click (Firefox): one click here is one.
    Notification.info(
      trans.__(
        'To notify you while this tab is hidden, JupyterLab needs the browser’s permission.'
      ),
      {
        autoClose: false,
        actions: [
          {
            label: trans.__('Allow notifications'),
            displayType: 'accent',
            callback: () => void askPermission()
          }
        ]
      }
    );
  } else if (permission === 'denied') {
    Notification.warning(
      trans.__(
        'This browser blocks notifications from this page, so a question is not shown while the tab is hidden. Allow notifications in the site settings of the browser, or turn “Notify when a question waits in a hidden tab” off.'
      ),
      { autoClose: false }
    );
  } else if (permission === 'unsupported') {
    Notification.warning(trans.__('This browser cannot show notifications.'), {
      autoClose: 8000
    });
  }
}

export default plugin;
