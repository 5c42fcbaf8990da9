import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';

import { RestBackend } from './api';
import { addCommands, addToPalette } from './commands';
import { notifyConfigProblems } from './configproblems';
import { AskDialogs, PromptDialogs } from './dialog';
import { CHECK_SETUP_COMMAND } from './doctor';
import { EventStreamWatch } from './events';
import { Hy2faModel } from './model';
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
    askDialogs: true
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
    loadSettings(settingRegistry, settings, model, askDialogs, prefs);
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
  prefs: ClusterPrefs
): void {
  registry
    .load(PLUGIN_ID)
    .then(loaded => {
      const apply = (): void => {
        settings.pollSeconds = loaded.get('pollSeconds').composite as number;
        settings.dialogs = loaded.get('dialogs').composite as boolean;
        settings.askDialogs = loaded.get('askDialogs').composite !== false;
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

export default plugin;
