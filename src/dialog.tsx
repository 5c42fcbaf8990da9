import { Dialog, Notification } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import React from 'react';

import { AskDetails } from './asks';
import { Progress } from './progress';
import { AnswerField, PromptForm } from './prompt';
import {
  IAsk,
  IConnection,
  IHy2faModel,
  PromptKind,
  WIDGET_CLASS,
  WIDGET_FOR_PREFIX
} from './tokens';
import { askTitle, failureWords } from './words';

/**
 * Whether the notebook widget of `%hy2fa connect` or `ensure()` shows connection
 * `name` on this page: then it shows the prompt already, and no dialog pops up. See
 * {@link WIDGET_CLASS} for the contract with hy2fa_lab/kernel/widget.py.
 */
export function notebookWidgetShows(name: string): boolean {
  const hex = Array.from(new TextEncoder().encode(name))
    .map(byte => byte.toString(16).padStart(2, '0'))
    .join('');
  const node = document.querySelector<HTMLElement>(
    `.${WIDGET_CLASS}.${WIDGET_FOR_PREFIX}${hex}`
  );
  return node !== null && node.offsetParent !== null;
}

/**
 * The dialog's body: the same prompt UI as the sidebar, submitted by the dialog's buttons,
 * and after an answer the login's progress (a Duo push to approve, "Checking…") until
 * the next prompt, which it shows in turn.
 */
class PromptBody extends ReactWidget {
  constructor(
    private readonly model: IHy2faModel,
    private readonly name: string,
    private readonly label: string,
    private readonly trans: TranslationBundle,
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

  isEmpty(): boolean {
    return (this.inputRef.current?.value ?? '') === '';
  }

  focusField(): void {
    this.inputRef.current?.focus();
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => {
          const connection = this.model.connection(this.name);
          return (
            <>
              <Progress
                connection={connection}
                label={this.label}
                trans={this.trans}
              />
              {connection?.state === 'prompting' && (
                <PromptForm
                  connection={connection}
                  inDialog
                  inputRef={this.inputRef}
                  onAnswer={this.onOption}
                  takeFocus={() => true}
                  trans={this.trans}
                />
              )}
            </>
          );
        }}
      </UseSignal>
    );
  }

  readonly inputRef = React.createRef<HTMLInputElement>();
}

/**
 * The dialog of a login. Submit sends the typed answer and the dialog stays, showing
 * what ssh does with it (and the next prompt, if one comes). Enter on a button in the
 * body (a Duo option) is that button's; Submit with an empty field does nothing; a host
 * key is trusted by a click or a footer button's own Enter, never by an Enter elsewhere.
 */
class LoginDialog extends Dialog<string> {
  constructor(
    options: Partial<Dialog.IOptions<string>>,
    private readonly promptBody: PromptBody,
    private readonly submitIndex: number,
    private readonly onSubmit: (value: string) => void
  ) {
    super(options);
  }

  handleEvent(event: Event): void {
    if (event.type === 'focus') {
      // Something outside took the focus (JupyterLab activating its launcher as it
      // starts): it goes back to the field that waits now. The dialog's own idea of
      // where focus belongs is the field it first saw, gone once another prompt came.
      const target = event.target;
      const field = this.promptBody.inputRef.current;
      if (
        field?.isConnected &&
        target instanceof Node &&
        !this.node.contains(target)
      ) {
        event.stopPropagation();
        field.focus();
        return;
      }
    }
    if (event.type === 'keydown') {
      const key = (event as KeyboardEvent).key;
      const active = document.activeElement;
      const footer =
        active instanceof HTMLElement &&
        active.closest('.jp-Dialog-footer') !== null;
      if (key === 'Enter' && !footer) {
        if (
          active instanceof HTMLElement &&
          this.promptBody.node.contains(active) &&
          !(active instanceof HTMLInputElement)
        ) {
          return; // a button of the body: the browser clicks it
        }
        if (this.submitIndex < 0) {
          event.stopPropagation();
          event.preventDefault();
          return; // a host key: not by a stray Enter
        }
      }
    }
    super.handleEvent(event);
  }

  resolve(index?: number): void {
    const chosen = index ?? this.submitIndex;
    if (this.submitIndex >= 0 && chosen === this.submitIndex) {
      if (this.promptBody.isEmpty()) {
        this.promptBody.focusField();
        return;
      }
      this.onSubmit(this.promptBody.getValue()); // the dialog stays: it shows the progress
      return;
    }
    super.resolve(chosen);
  }

  /** Submit works only while a prompt waits. */
  setSubmitEnabled(enabled: boolean): void {
    if (this.submitIndex < 0) {
      return;
    }
    const buttons = this.node.querySelectorAll<HTMLButtonElement>(
      '.jp-Dialog-footer .jp-Dialog-button'
    );
    const submit = buttons[this.submitIndex];
    if (submit) {
      submit.disabled = !enabled;
    }
  }
}

interface IOpenDialog {
  dialog: LoginDialog;
  /** The prompt it shows (or showed, before its answer). */
  promptId: number;
  kind: PromptKind;
  /** Whether the prompt was answered in this dialog: then it shows what follows. */
  answered: boolean;
}

/** What the buttons of a prompt's dialog do (their labels are translated). */
const NOT_NOW = 'hy2fa-prompt-not-now';
const CANCEL_LOGIN = 'hy2fa-prompt-cancel-login';
const SUBMIT_ANSWER = 'hy2fa-prompt-submit';
const TRUST_KEY = 'hy2fa-prompt-trust';
const REJECT_KEY = 'hy2fa-prompt-reject';

/**
 * Pops up a JupyterLab dialog whenever a connection starts prompting (a kernel called
 * `ensure()`, another tab clicked Connect), unless the sidebar or a notebook widget shows
 * it already. A prompt answered anywhere else closes its dialog everywhere.
 *
 * A prompt answered in the dialog keeps it open: it shows what ssh does with the answer
 * ("Approve the request on your phone" after a Duo push, with the seconds and ssh's
 * lines; "Checking…" after a code) and the next prompt (a wrong code, a second factor),
 * and closes when the login is over: connected (a notification says so) or failed (one
 * says why). "Not now" (Escape) closes it; the login goes on in the sidebar.
 */
export class PromptDialogs {
  constructor(
    private readonly model: IHy2faModel,
    private readonly options: {
      sidebarShows: () => boolean;
      /** Whether a notebook widget shows that connection (default: {@link notebookWidgetShows}). */
      widgetShows?: (name: string) => boolean;
      enabled: () => boolean;
      label: (cluster: string) => string;
      trans: TranslationBundle;
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
    for (const [name, open] of [...this.open]) {
      this.follow(name, open);
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
        !(this.options.widgetShows ?? notebookWidgetShows)(connection.name)
      ) {
        this.launch(connection);
      }
    }
    for (const connection of this.model.connections) {
      this.notifyFailures(connection);
    }
  }

  /** Keep an open dialog with its login, or close it. */
  private follow(name: string, open: IOpenDialog): void {
    const connection = this.model.connection(name);
    const state = connection?.state;
    if (state === 'prompting' && connection?.prompt) {
      const prompt = connection.prompt;
      open.dialog.setSubmitEnabled(true);
      if (prompt.id === open.promptId) {
        return;
      }
      // The next question of a login answered here: the same dialog asks it, unless a
      // host key's question (other buttons) comes or goes.
      if (
        open.answered &&
        prompt.kind !== 'hostkey' &&
        open.kind !== 'hostkey'
      ) {
        open.promptId = prompt.id;
        open.answered = false;
        this.shown.set(name, prompt.id);
        return;
      }
      this.close(name);
      return;
    }
    if (open.answered && (state === 'verifying' || state === 'starting')) {
      open.dialog.setSubmitEnabled(false);
      return; // it shows the progress
    }
    if (open.answered && state === 'connected' && connection) {
      Notification.success(
        this.options.trans.__(
          'Connected to %1',
          this.options.label(connection.cluster)
        ),
        { autoClose: 5000 }
      );
    }
    this.close(name); // answered elsewhere, connected, failed, cancelled
  }

  /** A login answered in a dialog that fails says so, even with the sidebar closed. */
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
    Notification.error(failureWords(connection, this.options.trans), {
      autoClose: 8000
    });
  }

  private launch(connection: IConnection): void {
    const { trans } = this.options;
    const name = connection.name;
    const prompt = connection.prompt!;
    const hostkey = prompt.kind === 'hostkey';
    const label = this.options.label(connection.cluster);
    const answer = (response: string, promptId: number): void => {
      const open = this.open.get(name);
      if (open) {
        open.answered = true;
      }
      this.send(name, response, promptId);
    };
    const body = new PromptBody(this.model, name, label, trans, answer);
    const notNow = Dialog.cancelButton({
      label: trans.__('Not now'),
      caption: trans.__('Close this dialog: the login waits in the sidebar'),
      actions: [NOT_NOW]
    });
    const buttons = hostkey
      ? [
          notNow,
          Dialog.warnButton({
            label: trans.__('Reject'),
            actions: [REJECT_KEY]
          }),
          Dialog.okButton({ label: trans.__('Trust'), actions: [TRUST_KEY] })
        ]
      : [
          notNow,
          Dialog.warnButton({
            label: trans.__('Cancel login'),
            actions: [CANCEL_LOGIN]
          }),
          Dialog.okButton({
            label: trans.__('Submit'),
            actions: [SUBMIT_ANSWER]
          })
        ];
    const title = trans.__('Log in to %1', label);
    const dialog: LoginDialog = new LoginDialog(
      {
        title,
        body,
        buttons,
        // A host key is trusted by a click, never by a stray Enter: focus goes to its text.
        focusNodeSelector: hostkey ? '.jp-hy2fa-prompt-text' : 'input',
        hasClose: true
      },
      body,
      hostkey ? -1 : buttons.length - 1,
      value => {
        const open = this.open.get(name);
        if (open) {
          answer(value, open.promptId);
        }
      }
    );
    dialog.addClass('jp-hy2fa-prompt-dialog');
    dialog.node.dataset.hy2faConnection = name;
    dialog.node.setAttribute('aria-label', title);
    this.open.set(name, {
      dialog,
      promptId: prompt.id,
      kind: prompt.kind,
      answered: false
    });
    dialog
      .launch()
      .then(result => {
        if (this.open.get(name)?.dialog === dialog) {
          this.open.delete(name);
        }
        const actions = result.button.actions;
        if (actions.includes(TRUST_KEY)) {
          this.send(name, 'yes', prompt.id);
        } else if (actions.includes(REJECT_KEY)) {
          this.send(name, 'no', prompt.id);
        } else if (actions.includes(CANCEL_LOGIN)) {
          this.model.disconnect(name).catch(() => undefined);
        }
      })
      .catch(() => {
        // closed because the login moved on without it
        if (this.open.get(name)?.dialog === dialog) {
          this.open.delete(name);
        }
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

/** Enter or Space this soon after an ask pops up was meant for what the person was typing in. */
const TYPE_THROUGH_MS = 600;

/** An ask's dialog body: ssh's words, who asks, and the field for a secret or an answer. */
class AskBody extends ReactWidget {
  constructor(
    readonly ask: IAsk,
    private readonly trans: TranslationBundle,
    private readonly onOption: (response: string) => void
  ) {
    super();
    this.addClass('jp-hy2fa-dialog');
    this.addClass('jp-hy2fa-ask');
    this.node.dataset.askId = ask.id;
    this.node.dataset.promptKind = ask.prompt.kind;
  }

  get hasField(): boolean {
    return this.ask.prompt.kind !== 'hostkey';
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

  isEmpty(): boolean {
    return (this.inputRef.current?.value ?? '') === '';
  }

  focusField(): void {
    this.inputRef.current?.focus();
  }

  render(): JSX.Element {
    return (
      <>
        <AskDetails
          ask={this.ask}
          trans={this.trans}
          textId={`jp-hy2fa-ask-dialog-text-${this.ask.id}`}
        />
        {this.hasField && (
          <AnswerField
            prompt={this.ask.prompt}
            inputRef={this.inputRef}
            onOption={this.onOption}
            autoComplete="off"
            label={this.ask.prompt.text.trim() || this.trans.__('Answer')}
            trans={this.trans}
          />
        )}
      </>
    );
  }

  readonly inputRef = React.createRef<HTMLInputElement>();
}

/**
 * The dialog of one ask. Escape is Cancel (the ssh ends); there is no close button, so a
 * stray click beside the dialog changes nothing. Submit with an empty field does nothing,
 * and an Enter or Space right after the dialog popped up is taken for typing that was
 * meant for the notebook.
 */
class AskDialog extends Dialog<string> {
  constructor(
    options: Partial<Dialog.IOptions<string>>,
    private readonly askBody: AskBody,
    private readonly cancelIndex: number,
    private readonly submitIndex: number
  ) {
    super(options);
  }

  handleEvent(event: Event): void {
    if (event.type === 'keydown') {
      const key = (event as KeyboardEvent).key;
      const early = performance.now() - this.shownAt < TYPE_THROUGH_MS;
      if (key === 'Escape' || (early && (key === 'Enter' || key === ' '))) {
        event.stopPropagation();
        event.preventDefault();
        if (key === 'Escape') {
          this.resolve(this.cancelIndex);
        }
        return;
      }
    }
    super.handleEvent(event);
  }

  resolve(index?: number): void {
    const chosen = index ?? this.submitIndex;
    if (chosen === this.submitIndex && this.askBody.isEmpty()) {
      this.askBody.focusField();
      return;
    }
    super.resolve(chosen);
  }

  protected onAfterAttach(msg: Message): void {
    this.shownAt = performance.now();
    super.onAfterAttach(msg);
  }

  private shownAt = Number.POSITIVE_INFINITY;
}

const CANCEL = 'hy2fa-ask-cancel';
const SUBMIT = 'hy2fa-ask-submit';
const TRUST = 'hy2fa-ask-trust';
const REFUSE = 'hy2fa-ask-refuse';

/**
 * Pops up a dialog for each question of a kernel's ssh, wherever the person is: one at a
 * time, the others wait their turn. A dialog closes when its ask is answered elsewhere or
 * goes away (its ssh exited, nobody answered in time).
 */
export class AskDialogs {
  constructor(
    private readonly model: IHy2faModel,
    private readonly options: {
      enabled: () => boolean;
      trans: TranslationBundle;
    }
  ) {
    model.asksChanged.connect(this.update, this);
  }

  /** The id of the ask whose dialog is open (or waiting for another dialog to close). */
  get current(): string | null {
    return this.open?.id ?? null;
  }

  dispose(): void {
    this.model.asksChanged.disconnect(this.update, this);
    this.open?.dialog.dispose();
    this.open = null;
  }

  /** Close a dialog whose ask is gone; show the next waiting ask. */
  update(): void {
    const waiting = new Set(this.model.asks.map(ask => ask.id));
    for (const id of [...this.shown]) {
      if (!waiting.has(id)) {
        this.shown.delete(id); // settled asks never come back
      }
    }
    if (this.open && !waiting.has(this.open.id)) {
      const { dialog } = this.open;
      this.open = null;
      dialog.dispose();
    }
    if (this.open || !this.options.enabled()) {
      return;
    }
    const next = this.model.asks.find(ask => !this.shown.has(ask.id));
    if (next) {
      this.launch(next);
    }
  }

  private launch(ask: IAsk): void {
    const { trans } = this.options;
    const hostkey = ask.prompt.kind === 'hostkey';
    const body = new AskBody(ask, trans, response => {
      this.finish(ask, dialog);
      this.send(ask, this.model.answerAsk(ask.id, response));
    });
    const cancel = Dialog.cancelButton({
      label: trans.__('Cancel'),
      caption: trans.__('End the ssh that asks'),
      actions: [CANCEL]
    });
    const buttons = hostkey
      ? [
          cancel,
          Dialog.warnButton({
            label: trans.__('Refuse'),
            caption: trans.__('Do not trust this host key: ssh stops'),
            actions: [REFUSE]
          }),
          Dialog.okButton({
            label: trans.__('Trust'),
            caption: trans.__('Trust this host key and connect'),
            actions: [TRUST]
          })
        ]
      : [
          cancel,
          Dialog.okButton({ label: trans.__('Submit'), actions: [SUBMIT] })
        ];
    const title = askTitle(ask, trans);
    const dialog: AskDialog = new AskDialog(
      {
        title,
        body,
        buttons,
        // A host key is trusted by a click, never by a stray Enter: focus goes to its text.
        focusNodeSelector: hostkey ? '.jp-hy2fa-prompt-text' : 'input',
        hasClose: false
      },
      body,
      0,
      hostkey ? -1 : buttons.length - 1
    );
    dialog.addClass('jp-hy2fa-ask-dialog');
    dialog.node.dataset.askId = ask.id;
    dialog.node.setAttribute('aria-label', title);
    this.shown.add(ask.id);
    this.open = { id: ask.id, dialog };
    dialog
      .launch()
      .then(result => {
        if (!this.finish(ask, dialog)) {
          return;
        }
        const actions = result.button.actions;
        if (actions.includes(SUBMIT)) {
          if (result.value) {
            this.send(ask, this.model.answerAsk(ask.id, result.value));
          }
        } else if (actions.includes(TRUST)) {
          this.send(ask, this.model.answerAsk(ask.id, 'yes'));
        } else if (actions.includes(REFUSE)) {
          this.send(ask, this.model.answerAsk(ask.id, 'no'));
        } else if (actions.includes(CANCEL)) {
          this.send(ask, this.model.cancelAsk(ask.id));
        }
      })
      .catch(() => {
        this.finish(ask, dialog); // closed: the ask went away
      });
  }

  /** The dialog of `ask` is done; the next ask may show. False if it was done already. */
  private finish(ask: IAsk, dialog: AskDialog): boolean {
    if (this.open?.dialog !== dialog) {
      return false;
    }
    this.open = null;
    if (!dialog.isDisposed) {
      dialog.dispose();
    }
    window.setTimeout(() => this.update(), 0);
    return true;
  }

  private send(ask: IAsk, work: Promise<void>): void {
    work.catch(error => {
      Notification.error(error?.message ?? String(error), { autoClose: 8000 });
      if (this.model.ask(ask.id)) {
        this.shown.delete(ask.id); // still waiting (a refused answer): ask again
        this.update();
      }
    });
  }

  private open: { id: string; dialog: AskDialog } | null = null;
  private shown = new Set<string>();
}
