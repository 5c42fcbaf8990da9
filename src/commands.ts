import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  InputDialog,
  showDialog
} from '@jupyterlab/apputils';
import type { TranslationBundle } from '@jupyterlab/translation';
import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { RestBackend } from './api';
import { connectAsking } from './clusterforms';
import { CHECK_SETUP_COMMAND, checkSetupIcon, openDoctor } from './doctor';
import { isUnsupported } from './errors';
import { CommandIDs, IHy2faModel } from './tokens';
import { madeByWords } from './words';

/** What the commands act on. */
export interface ICommandContext {
  model: IHy2faModel;
  trans: TranslationBundle;
  /** Open the sidebar. */
  openSidebar: () => void;
  /** Whether a prompt pops up in a dialog (else the sidebar opens to show it). */
  dialogs: () => boolean;
}

/** Add the commands: show the sidebar, connect, disconnect. */
export function addCommands(
  app: JupyterFrontEnd,
  context: ICommandContext
): void {
  const { trans } = context;
  app.commands.addCommand(CommandIDs.openSidebar, {
    label: trans.__('Show 2FA Connections'),
    execute: () => context.openSidebar()
  });
  app.commands.addCommand(CommandIDs.connect, {
    label: trans.__('Connect to a 2FA Cluster…'),
    execute: args => connect(context, args)
  });
  app.commands.addCommand(CommandIDs.disconnect, {
    label: trans.__('Disconnect a 2FA Cluster…'),
    execute: args => disconnect(context, args)
  });
  const backend = new RestBackend(app.serviceManager.serverSettings);
  app.commands.addCommand(CHECK_SETUP_COMMAND, {
    label: trans.__('Check My 2FA Setup'),
    caption: trans.__(
      'What a login needs, checked without logging in: OpenSSH, sockets, ssh config, host key, network'
    ),
    icon: checkSetupIcon,
    execute: args => {
      openDoctor(
        app,
        {
          check: cluster => backend.doctor(cluster),
          clusters: () => context.model.clusters,
          trans
        },
        typeof args.cluster === 'string' ? args.cluster : undefined
      );
    }
  });
}

/** Put the commands in the palette, under "2FA Connections". */
export function addToPalette(
  palette: ICommandPalette,
  trans: TranslationBundle
): void {
  const category = trans.__('2FA Connections');
  for (const command of [
    CommandIDs.connect,
    CommandIDs.disconnect,
    CommandIDs.openSidebar,
    CHECK_SETUP_COMMAND
  ]) {
    palette.addItem({ command, category });
  }
}

/**
 * `hy2fa:connect`: log in to `args.cluster`, or to a cluster picked from a list (the first
 * time on a built-in cluster, after asking the person's user name there). The prompt shows
 * in a dialog, or in the sidebar when dialogs are off.
 */
async function connect(
  context: ICommandContext,
  args: ReadonlyPartialJSONObject
): Promise<void> {
  const { model, trans } = context;
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
  if (!context.dialogs()) {
    context.openSidebar();
  }
  try {
    // The first Connect to a built-in cluster asks the person's user name there.
    const row = model.cluster(cluster);
    await (row ? connectAsking(model, row, trans) : model.connect(cluster));
  } catch (error) {
    if (!isUnsupported(error)) {
      throw error;
    }
    context.openSidebar(); // its banner says why no master can be made here
  }
}

/**
 * `hy2fa:disconnect`: stop `args.name` (a connection's id or name), or a connection picked
 * from the open ones (two of one name are told apart by who made them).
 */
async function disconnect(
  context: ICommandContext,
  args: ReadonlyPartialJSONObject
): Promise<void> {
  const { model, trans } = context;
  let name = args.name as string | undefined;
  if (!name) {
    await model.refresh();
    const open = model.connections.filter(
      c => c.state !== 'failed' && c.state !== 'disconnected'
    );
    const ids = new Map<string, string>(); // what the list shows -> the connection's id
    for (const connection of open) {
      const made = madeByWords(connection, trans);
      let item = made ? `${connection.name} (${made})` : connection.name;
      if (ids.has(item)) {
        item = `${item} ${connection.control_path}`;
      }
      ids.set(item, connection.id);
    }
    const live = [...ids.keys()];
    if (live.length === 0) {
      await showDialog({
        title: trans.__('2FA connections'),
        body: trans.__('No 2FA connection is open.'),
        buttons: [Dialog.okButton()] // labelled by Lab's own translation
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
    name = ids.get(result.value) ?? result.value;
  }
  await model.disconnect(name);
}
