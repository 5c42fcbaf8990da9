import { Dialog, Notification } from '@jupyterlab/apputils';
import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import React from 'react';

import { Hy2faModel } from './model';
import { PromptForm } from './prompt';
import { IConnection } from './tokens';
import { failureWords } from './words';

/** The dialog's body: the same prompt UI as the sidebar, submitted by the dialog's buttons. */
class PromptBody extends ReactWidget {
  constructor(
    private readonly model: Hy2faModel,
    private readonly name: string,
    private readonly onOption: (response: string, promptId: number) => void
  ) {
    super();
    this.addClass('jp-hy2fa-dialog');
    this.node.dataset.hy2faConnection = name;
  }

  /** The typed answer, read once: the field is emptied as it is read. */
  getValue(): string {
    const input = this.inputRef.current;
    const value = input?.value ?? '';
    if (input) {
      input.value = '';
    }
    return value;
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => {
          const connection = this.model.connection(this.name);
          return connection ? (
            <PromptForm
              connection={connection}
              inDialog
              inputRef={this.inputRef}
              onAnswer={this.onOption}
            />
          ) : null;
        }}
      </UseSignal>
    );
  }

  readonly inputRef = React.createRef<HTMLInputElement>();
}

interface IOpenDialog {
  dialog: Dialog<string>;
  promptId: number;
}

/**
 * Pops up a JupyterLab dialog whenever a connection starts prompting (a kernel called
 * `ensure()`, another tab clicked Connect), unless the sidebar shows it already. A prompt
 * answered anywhere closes its dialog everywhere.
 */
export class PromptDialogs {
  constructor(
    private readonly model: Hy2faModel,
    private readonly options: {
      sidebarShows: () => boolean;
      widgetShows: (name: string) => boolean;
      enabled: () => boolean;
      label: (cluster: string) => string;
    }
  ) {
    model.changed.connect(this.update, this);
  }

  dispose(): void {
    this.model.changed.disconnect(this.update, this);
    for (const name of [...this.open.keys()]) {
      this.close(name);
    }
  }

  private update(): void {
    for (const [name, open] of this.open) {
      const connection = this.model.connection(name);
      if (
        connection?.state !== 'prompting' ||
        connection.prompt?.id !== open.promptId
      ) {
        this.close(name);
      }
    }
    for (const connection of this.model.prompting()) {
      const prompt = connection.prompt!;
      const seen = this.shown.get(connection.name) ?? 0;
      if (this.open.has(connection.name) || prompt.id <= seen) {
        continue;
      }
      this.shown.set(connection.name, prompt.id);
      if (
        this.options.enabled() &&
        !this.options.sidebarShows() &&
        !this.options.widgetShows(connection.name)
      ) {
        this.launch(connection);
      }
    }
    for (const connection of this.model.connections) {
      this.notifyFailures(connection);
    }
  }

  /** A login started from a dialog that fails says so, even with the sidebar closed. */
  private notifyFailures(connection: IConnection): void {
    const key = `${connection.state}:${connection.updated ?? connection.message}`;
    if (connection.state !== 'failed' || !this.asked.has(connection.name)) {
      return;
    }
    if (this.reported.get(connection.name) === key) {
      return;
    }
    this.reported.set(connection.name, key);
    this.asked.delete(connection.name);
    Notification.error(failureWords(connection), { autoClose: 8000 });
  }

  private launch(connection: IConnection): void {
    const name = connection.name;
    const prompt = connection.prompt!;
    const hostkey = prompt.kind === 'hostkey';
    const body = new PromptBody(this.model, name, (response, promptId) => {
      this.send(name, response, promptId);
      this.close(name);
    });
    const dialog = new Dialog<string>({
      title: `Log in to ${this.options.label(connection.cluster)}`,
      body,
      buttons: hostkey
        ? [
            Dialog.cancelButton({ label: 'Not now' }),
            Dialog.warnButton({ label: 'Reject' }),
            Dialog.okButton({ label: 'Trust' })
          ]
        : [
            Dialog.cancelButton({ label: 'Not now' }),
            Dialog.warnButton({ label: 'Cancel login' }),
            Dialog.okButton({ label: 'Submit' })
          ],
      focusNodeSelector: 'input',
      hasClose: true
    });
    dialog.addClass('jp-hy2fa-prompt-dialog');
    this.open.set(name, { dialog, promptId: prompt.id });
    dialog
      .launch()
      .then(result => {
        this.open.delete(name);
        const label = result.button.label;
        if (label === 'Submit' && result.value) {
          this.send(name, result.value, prompt.id);
        } else if (label === 'Trust') {
          this.send(name, 'yes', prompt.id);
        } else if (label === 'Reject') {
          this.send(name, 'no', prompt.id);
        } else if (label === 'Cancel login') {
          this.model.disconnect(name).catch(() => undefined);
        }
      })
      .catch(() => {
        this.open.delete(name); // closed because the prompt was answered elsewhere
      });
  }

  private send(name: string, response: string, promptId: number): void {
    this.asked.add(name);
    this.model.answer(name, response, promptId).catch(error => {
      Notification.error(error?.message ?? String(error), { autoClose: 8000 });
    });
  }

  private close(name: string): void {
    const open = this.open.get(name);
    if (open) {
      this.open.delete(name);
      open.dialog.dispose();
    }
  }

  private open = new Map<string, IOpenDialog>();
  private shown = new Map<string, number>();
  private asked = new Set<string>();
  private reported = new Map<string, string>();
}
