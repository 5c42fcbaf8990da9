import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import type { ServerConnection } from '@jupyterlab/services';
import type { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { requestAPI } from './request';

/**
 * A value of the server's `c.Hy2faLab` config that is not used, and what is used instead
 * (`GET hy2fa/settings` → `problems`, `Problem.to_json()` in hy2fa_lab/core/settings.py).
 */
export interface IConfigProblem {
  /** The setting, e.g. `askpass` or `clusters`. */
  setting: string;
  /** The cluster of `clusters` it is about (listed with this error), else null. */
  cluster: string | null;
  /** In words: the setting, what is wrong, and what is used instead. */
  message: string;
}

/**
 * Say once, at start, what of the server's config is not used: one warning notification
 * (its message must stay short: Lab cuts it at 140 characters), whose Details list each
 * problem in the server's words. Nothing when there are none, or the server cannot say.
 */
export async function notifyConfigProblems(
  serverSettings: ServerConnection.ISettings,
  trans: TranslationBundle
): Promise<string | null> {
  let problems: IConfigProblem[];
  try {
    const reply = await requestAPI<{ problems?: IConfigProblem[] }>(
      'settings',
      serverSettings
    );
    problems = Array.isArray(reply?.problems) ? reply.problems : [];
  } catch {
    return null; // no extension, or an older one: the sidebar says what it can
  }
  if (problems.length === 0) {
    return null;
  }
  const message = trans._n(
    '2FA connections: one value of c.Hy2faLab is not used',
    '2FA connections: %1 values of c.Hy2faLab are not used',
    problems.length
  );
  return Notification.warning(message, {
    autoClose: false,
    actions: [
      {
        label: trans.__('Details'),
        caption: trans.__('What is not used, and what is used instead'),
        callback: () => void showProblems(problems, trans)
      }
    ]
  });
}

/** A dialog with each problem as a list item (text, never HTML). */
async function showProblems(
  problems: IConfigProblem[],
  trans: TranslationBundle
): Promise<void> {
  const body = new Widget();
  body.addClass('jp-hy2fa-config-problems');
  const intro = document.createElement('p');
  intro.textContent = trans.__(
    'The server skipped these values of its Jupyter config (the rest of it applies). Fix them, then restart the server:'
  );
  const list = document.createElement('ul');
  for (const problem of problems) {
    const item = document.createElement('li');
    item.textContent = String(problem.message);
    list.appendChild(item);
  }
  body.node.append(intro, list);
  await showDialog({
    title: trans.__('2FA connections: configuration'),
    body,
    buttons: [Dialog.okButton({ label: trans.__('Close') })]
  });
}
