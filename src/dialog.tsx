import { Dialog, Notification } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import type { ISignal } from '@lumino/signaling';
import React from 'react';

import { AskFrom } from './asks';
import { Progress } from './progress';
import { PromptForm, Question } from './prompt';
import {
  IAsk,
  IHy2faModel,
  PromptKind,
  WIDGET_CLASS,
  WIDGET_FOR_PREFIX
} from './tokens';
import { askedAt, askTitle, failureWords, hostKeyAnswers } from './words';

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
 * Enter or Space this soon after a dialog pops up was meant for what the person was typing
 * in (a notebook cell), not for the dialog.
 */
const TYPE_THROUGH_MS = 600;

/** A dialog's body: the question its source renders, and the field the dialog reads. */
class QuestionBody extends ReactWidget {
  constructor(
    private readonly signal: ISignal<unknown, void>,
    private readonly content: () => JSX.Element
  ) {
    super();
    this.addClass('jp-hy2fa-dialog');
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
    return <UseSignal signal={this.signal}>{() => this.content()}</UseSignal>;
  }

  readonly inputRef = React.createRef<HTMLInputElement>();
}

/**
 * The dialog of one question, whichever its source. Its first button dismisses it, and
 * Escape is that button. Submit sends the typed answer (an empty field: nothing is sent)
 * and the dialog stays, showing what becomes of it. Enter on a button of the body (a Duo
 * option) is that button's; a host key is trusted or rejected by a click or a footer
 * button's own key, never by an Enter elsewhere; an Enter or Space right after the dialog
 * popped up is taken for typing meant for the notebook, and dropped (`data-keys="ready"`
 * says when keys count). Focus taken from outside goes back to the field.
 */
class QuestionDialog extends Dialog<string> {
  constructor(
    options: Partial<Dialog.IOptions<string>>,
    private readonly body: QuestionBody,
    private readonly submitIndex: number,
    private readonly onSubmit: (value: string) => void
  ) {
    super(options);
  }

  handleEvent(event: Event): void {
    if (event.type === 'focus') {
      // Something outside took the focus (JupyterLab activating its launcher as it
      // starts): it goes back to the field that waits now. The dialog's own idea of
      // where focus belongs is the field it first saw, gone once another question came.
      const target = event.target;
      const field = this.body.inputRef.current;
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
      if (
        key === 'Escape' ||
        (!this.keysReady && (key === 'Enter' || key === ' '))
      ) {
        event.stopPropagation();
        event.preventDefault();
        if (key === 'Escape') {
          this.resolve(0);
        }
        return;
      }
      const active = document.activeElement;
      const footer =
        active instanceof HTMLElement &&
        active.closest('.jp-Dialog-footer') !== null;
      if (key === 'Enter' && !footer) {
        if (
          active instanceof HTMLElement &&
          this.body.node.contains(active) &&
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
    if (chosen < 0) {
      return; // no default answer to a host key
    }
    if (chosen === this.submitIndex) {
      if (this.body.isEmpty()) {
        this.body.focusField();
        return;
      }
      this.onSubmit(this.body.getValue()); // the dialog stays: it shows what follows
      return;
    }
    super.resolve(chosen);
  }

  /** Submit works only while the question waits for an answer. */
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

  dispose(): void {
    window.clearTimeout(this.readyTimer);
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    this.keysReady = false;
    delete this.node.dataset.keys;
    window.clearTimeout(this.readyTimer);
    this.readyTimer = window.setTimeout(() => {
      this.keysReady = true;
      this.node.dataset.keys = 'ready';
    }, TYPE_THROUGH_MS);
    super.onAfterAttach(msg);
  }

  private keysReady = false;
  private readyTimer = 0;
}

/** A question waiting for a person, as the dialogs see it. */
export interface IWaitingQuestion {
  /** What it belongs to: a connection's name, an ask's id. */
  key: string;
  /** Which question: a prompt's id (a login asks several in turn), an ask's id. */
  id: string;
  kind: PromptKind;
}

/**
 * Where the question of an open dialog is now: still waiting (or the next one of the same
 * login), its answer being worked on (a login checking a code), its login connected, or
 * over (answered elsewhere, cancelled, failed, gone).
 */
export type QuestionNow =
  { question: IWaitingQuestion } | 'working' | 'connected' | 'over';

/** The dialog that shows a question, and what it knows of it. */
interface IOpenQuestion {
  key: string;
  id: string;
  kind: PromptKind;
  /** Whether it was answered in this dialog: then the dialog shows what follows. */
  answered: boolean;
  dialog: QuestionDialog;
  body: QuestionBody;
}

/** What the footer's buttons do (their labels are translated). */
const DISMISS = 'hy2fa-question-dismiss';
const SUBMIT = 'hy2fa-question-submit';
const TRUST = 'hy2fa-question-trust';
const REJECT = 'hy2fa-question-reject';

/** What a source may add to the footer, beside the dismiss button and the answer's. */
export interface IExtraButton {
  label: string;
  caption: string;
  action: string;
}

/**
 * Pops up a dialog for each question of one source, wherever the person is, one at a
 * time: the others wait their turn. Both sources (a connection's login, {@link
 * PromptDialogs}, and a kernel's ssh, {@link AskDialogs}) ask through it, so a question
 * looks and answers the same from either: the {@link Question} in the body (a host key's
 * fingerprint in view, Duo's options as buttons, the time left), the same footer (the
 * source's dismiss button first, which Escape is; then Reject and Trust for a host key,
 * else Submit) and the same keys. A dialog closes when its question is answered elsewhere
 * or goes away; one answered here stays while its answer is worked on and asks the next
 * question of the same login (not a host key's, whose buttons differ: that one pops up
 * anew).
 */
export abstract class QuestionDialogs {
  constructor(
    protected readonly model: IHy2faModel,
    protected readonly options: {
      enabled: () => boolean;
      trans: TranslationBundle;
    },
    signal: ISignal<IHy2faModel, void>
  ) {
    this.signal = signal;
    signal.connect(this.update, this);
  }

  /** The key of the question whose dialog is open (or waiting for another dialog to close). */
  get current(): string | null {
    return this.open?.key ?? null;
  }

  dispose(): void {
    this.signal.disconnect(this.update, this);
    const open = this.open;
    this.open = null;
    open?.dialog.dispose();
  }

  /** Follow the open dialog's question; show the next waiting one. */
  update(): void {
    if (this.open) {
      this.follow(this.open);
    }
    this.afterUpdate();
    const waiting = this.waiting();
    const marks = new Set(waiting.map(mark));
    for (const seen of [...this.shown]) {
      if (!marks.has(seen)) {
        this.shown.delete(seen); // settled questions never come back
      }
    }
    if (this.open || !this.options.enabled()) {
      return;
    }
    for (const question of waiting) {
      if (this.shown.has(mark(question))) {
        continue;
      }
      this.shown.add(mark(question));
      if (!this.shownElsewhere(question.key)) {
        this.launch(question);
        return;
      }
    }
  }

  // ---- what a source says ------------------------------------------------------------

  /** The class of its dialogs. */
  protected abstract readonly className: string;
  /** Whether its dialogs have a close button (then a click beside one dismisses it). */
  protected abstract readonly hasClose: boolean;
  /** The questions that wait now, oldest first. */
  protected abstract waiting(): IWaitingQuestion[];
  /** Where the question of `key` is now. */
  protected abstract now(key: string): QuestionNow;
  /** Whether the question of `key` shows already (no dialog then): the sidebar, a widget. */
  protected shownElsewhere(key: string): boolean {
    void key;
    return false;
  }
  protected abstract title(question: IWaitingQuestion): string;
  /** The first button, which Escape is. */
  protected abstract dismissButton(): { label: string; caption: string };
  /** What dismissing does (the login waits on; the ssh ends). */
  protected abstract dismissed(key: string): Promise<unknown> | void;
  /** Buttons between the dismiss button and Submit (not for a host key). */
  protected extraButtons(): IExtraButton[] {
    return [];
  }
  /** An extra button was chosen. */
  protected extra(action: string, key: string): void {
    void action;
    void key;
  }
  /** The body: the question, and whatever else the source shows with it. */
  protected abstract render(open: IOpenQuestion): JSX.Element;
  /** Send an answer to question `id` of `key`. */
  protected abstract send(
    key: string,
    id: string,
    response: string
  ): Promise<unknown>;
  /** The login of a question answered here is connected. */
  protected connected(key: string): void {
    void key;
  }
  /** After each update (the source's notifications). */
  protected afterUpdate(): void {
    return;
  }
  /** Dataset of the dialog's node (and its body's) naming the question. */
  protected abstract name(question: IWaitingQuestion, node: HTMLElement): void;

  // ---- the dialogs -------------------------------------------------------------------

  /** An answer typed or picked in the open dialog: it stays, and shows what follows. */
  protected answer(open: IOpenQuestion, response: string, id = open.id): void {
    open.answered = true;
    open.dialog.setSubmitEnabled(false);
    open.body.update();
    this.deliver(open.key, id, this.send(open.key, id, response));
  }

  /** Keep an open dialog with its question, or close it. */
  private follow(open: IOpenQuestion): void {
    const now = this.now(open.key);
    if (typeof now === 'object') {
      const question = now.question;
      if (question.id === open.id) {
        open.dialog.setSubmitEnabled(!open.answered);
        return;
      }
      if (
        open.answered &&
        question.kind !== 'hostkey' &&
        open.kind !== 'hostkey'
      ) {
        // The next question of a login answered here: the same dialog asks it.
        open.id = question.id;
        open.kind = question.kind;
        open.answered = false;
        this.shown.add(mark(question));
        open.dialog.setSubmitEnabled(true);
        return;
      }
      this.close();
      return;
    }
    if (open.answered && now === 'working') {
      open.dialog.setSubmitEnabled(false);
      return; // it shows the progress
    }
    if (open.answered && now === 'connected') {
      this.connected(open.key);
    }
    this.close();
  }

  private launch(question: IWaitingQuestion): void {
    const { trans } = this.options;
    const hostkey = question.kind === 'hostkey';
    const dismiss = this.dismissButton();
    const buttons: Dialog.IButton[] = [
      Dialog.cancelButton({ ...dismiss, actions: [DISMISS] })
    ];
    if (hostkey) {
      const [trust, reject] = hostKeyAnswers(trans);
      buttons.push(
        Dialog.warnButton({
          label: reject.label,
          caption: reject.caption,
          actions: [REJECT]
        }),
        Dialog.okButton({
          label: trust.label,
          caption: trust.caption,
          actions: [TRUST]
        })
      );
    } else {
      for (const extra of this.extraButtons()) {
        buttons.push(
          Dialog.warnButton({
            label: extra.label,
            caption: extra.caption,
            actions: [extra.action]
          })
        );
      }
      buttons.push(
        Dialog.okButton({ label: trans.__('Submit'), actions: [SUBMIT] })
      );
    }
    const title = this.title(question);
    // The body and the dialog reach their question through `open`, made once they are.
    const open = { ...question, answered: false } as IOpenQuestion;
    const body = new QuestionBody(this.model.changed, () => this.render(open));
    const dialog = new QuestionDialog(
      {
        title,
        body,
        buttons,
        // A host key is trusted by a click, never by a stray Enter: focus goes to its text.
        focusNodeSelector: hostkey ? '.jp-hy2fa-prompt-text' : 'input',
        hasClose: this.hasClose
      },
      body,
      hostkey ? -1 : buttons.length - 1,
      value => this.answer(open, value)
    );
    open.dialog = dialog;
    open.body = body;
    dialog.addClass('jp-hy2fa-question-dialog');
    dialog.addClass(this.className);
    dialog.node.dataset.promptKind = question.kind;
    dialog.node.setAttribute('aria-label', title);
    this.name(question, dialog.node);
    this.name(question, body.node);
    this.open = open;
    dialog
      .launch()
      .then(result => {
        if (!this.finish(open)) {
          return;
        }
        const actions = result.button.actions;
        if (actions.includes(TRUST)) {
          this.deliver(open.key, open.id, this.send(open.key, open.id, 'yes'));
        } else if (actions.includes(REJECT)) {
          this.deliver(open.key, open.id, this.send(open.key, open.id, 'no'));
        } else if (actions.includes(DISMISS)) {
          const work = this.dismissed(open.key);
          if (work) {
            this.deliver(open.key, open.id, work);
          }
        } else {
          for (const action of actions) {
            this.extra(action, open.key);
          }
        }
      })
      .catch(() => {
        this.finish(open); // closed: the question moved on without it
      });
  }

  /** What became of an answer: if it was not taken, say why, and ask again. */
  private deliver(key: string, id: string, work: Promise<unknown>): void {
    work.catch(error => {
      Notification.error(error?.message ?? String(error), { autoClose: 8000 });
      const open = this.open;
      if (open?.key === key && open.id === id) {
        open.answered = false; // the field again, empty
        open.dialog.setSubmitEnabled(true);
        open.body.update();
        return;
      }
      this.shown.delete(mark({ key, id })); // still waiting: it pops up again
      this.update();
    });
  }

  /** The dialog of `open` is done; the next question may show. False if done already. */
  private finish(open: IOpenQuestion): boolean {
    if (this.open !== open) {
      return false;
    }
    this.open = null;
    if (!open.dialog.isDisposed) {
      open.dialog.dispose();
    }
    window.setTimeout(() => this.update(), 0);
    return true;
  }

  private close(): void {
    const open = this.open;
    if (open) {
      this.open = null;
      open.dialog.dispose();
    }
  }

  private readonly signal: ISignal<IHy2faModel, void>;
  private open: IOpenQuestion | null = null;
  private shown = new Set<string>();
}

function mark(question: { key: string; id: string }): string {
  return `${question.key}\u0000${question.id}`;
}

const CANCEL_LOGIN = 'hy2fa-prompt-cancel-login';

/**
 * The questions of connections' logins (a kernel called `ensure()`, another tab clicked
 * Connect), unless the sidebar or a notebook widget shows them already. "Not now"
 * (Escape) closes the dialog and the login waits on in the sidebar; "Cancel login" ends
 * it. Answered here, the dialog shows what ssh does with the answer ("Approve the request
 * on your phone" after a Duo push, with the seconds and ssh's lines; "Checking…" after a
 * code) and the next prompt (a wrong code, a second factor), and closes when the login is
 * over: connected (a notification says so) or failed (one says why).
 */
export class PromptDialogs extends QuestionDialogs {
  constructor(
    model: IHy2faModel,
    private readonly sources: {
      sidebarShows: () => boolean;
      /** Whether a notebook widget shows that connection (default: {@link notebookWidgetShows}). */
      widgetShows?: (name: string) => boolean;
      enabled: () => boolean;
      label: (cluster: string) => string;
      trans: TranslationBundle;
    }
  ) {
    super(model, sources, model.changed);
  }

  protected readonly className = 'jp-hy2fa-prompt-dialog';
  protected readonly hasClose = true;

  protected waiting(): IWaitingQuestion[] {
    return this.model.prompting().map(connection => ({
      key: connection.id, // two connections may share a name
      id: String(connection.prompt!.id),
      kind: connection.prompt!.kind
    }));
  }

  protected now(key: string): QuestionNow {
    const connection = this.model.connection(key);
    switch (connection?.state) {
      case 'prompting':
        return connection.prompt
          ? {
              question: {
                key,
                id: String(connection.prompt.id),
                kind: connection.prompt.kind
              }
            }
          : 'working';
      case 'starting':
      case 'verifying':
        return 'working';
      case 'connected':
        return 'connected';
      default:
        return 'over';
    }
  }

  protected shownElsewhere(key: string): boolean {
    // A notebook widget is made for a name, before its login has an id.
    const name = this.model.connection(key)?.name ?? key;
    return (
      this.sources.sidebarShows() ||
      (this.sources.widgetShows ?? notebookWidgetShows)(name)
    );
  }

  protected title(question: IWaitingQuestion): string {
    return this.options.trans.__('Log in to %1', this.label(question.key));
  }

  protected dismissButton(): { label: string; caption: string } {
    const { trans } = this.options;
    return {
      label: trans.__('Not now'),
      caption: trans.__('Close this dialog: the login waits in the sidebar')
    };
  }

  protected dismissed(): void {
    return; // the login waits in the sidebar
  }

  protected extraButtons(): IExtraButton[] {
    const { trans } = this.options;
    return [
      {
        label: trans.__('Cancel login'),
        caption: trans.__('End this login'),
        action: CANCEL_LOGIN
      }
    ];
  }

  protected extra(action: string, key: string): void {
    if (action === CANCEL_LOGIN) {
      this.model.disconnect(key).catch(() => undefined);
    }
  }

  protected render(open: IOpenQuestion): JSX.Element {
    const connection = this.model.connection(open.key);
    return (
      <>
        <Progress
          connection={connection}
          label={this.label(open.key)}
          trans={this.options.trans}
        />
        {connection?.state === 'prompting' && (
          <PromptForm
            connection={connection}
            inDialog
            inputRef={open.body.inputRef}
            submitted={open.answered ? Number(open.id) : undefined}
            onAnswer={(response, promptId) =>
              this.answer(open, response, String(promptId))
            }
            takeFocus={() => true}
            trans={this.options.trans}
          />
        )}
      </>
    );
  }

  protected send(key: string, id: string, response: string): Promise<unknown> {
    this.asked.add(key);
    return this.model.answer(key, response, Number(id));
  }

  protected connected(key: string): void {
    Notification.success(
      this.options.trans.__('Connected to %1', this.label(key)),
      { autoClose: 5000 }
    );
  }

  /** A login answered in a dialog that fails says so, even with the sidebar closed. */
  protected afterUpdate(): void {
    for (const connection of this.model.connections) {
      const key = `${connection.state}:${connection.updated ?? connection.message}`;
      if (connection.state !== 'failed' || !this.asked.has(connection.id)) {
        continue;
      }
      if (this.reported.get(connection.id) === key) {
        continue;
      }
      this.reported.set(connection.id, key);
      this.asked.delete(connection.id);
      Notification.error(failureWords(connection, this.options.trans), {
        autoClose: 8000
      });
    }
  }

  protected name(question: IWaitingQuestion, node: HTMLElement): void {
    node.dataset.hy2faConnection = question.key;
  }

  /** The cluster's label of connection `key`. */
  private label(key: string): string {
    return this.sources.label(this.model.connection(key)?.cluster ?? key);
  }

  private asked = new Set<string>();
  private reported = new Map<string, string>();
}

/**
 * The questions of kernels' ssh (through `hy2fa-askpass`). Cancel (Escape) ends the ssh
 * that asks; there is no close button, so a stray click beside the dialog changes nothing.
 */
export class AskDialogs extends QuestionDialogs {
  constructor(
    model: IHy2faModel,
    options: {
      enabled: () => boolean;
      trans: TranslationBundle;
    }
  ) {
    super(model, options, model.asksChanged);
  }

  protected readonly className = 'jp-hy2fa-ask-dialog';
  protected readonly hasClose = false;

  protected waiting(): IWaitingQuestion[] {
    return this.model.asks.map(ask => ({
      key: ask.id,
      id: ask.id,
      kind: ask.prompt.kind
    }));
  }

  protected now(key: string): QuestionNow {
    const ask = this.model.ask(key);
    return ask
      ? { question: { key, id: ask.id, kind: ask.prompt.kind } }
      : 'over';
  }

  protected title(question: IWaitingQuestion): string {
    const ask = this.model.ask(question.key);
    return ask ? askTitle(ask, this.options.trans) : '';
  }

  protected dismissButton(): { label: string; caption: string } {
    const { trans } = this.options;
    return {
      label: trans.__('Cancel'),
      caption: trans.__('End the ssh that asks')
    };
  }

  protected dismissed(key: string): Promise<unknown> {
    return this.model.cancelAsk(key);
  }

  protected render(open: IOpenQuestion): JSX.Element {
    // An ask answered here leaves the model before its dialog closes: keep what it was.
    const ask = this.model.ask(open.key) ?? this.seen.get(open.key);
    if (!ask) {
      return <></>;
    }
    this.seen.set(open.key, ask);
    const { trans } = this.options;
    return (
      <Question
        prompt={ask.prompt}
        questionId={ask.id}
        since={askedAt(ask)}
        details={<AskFrom ask={ask} trans={trans} />}
        busy={open.answered ? trans.__('Sending…') : null}
        inDialog
        onAnswer={response => this.answer(open, response)}
        inputRef={open.body.inputRef}
        autoComplete="off"
        takeFocus={() => true}
        textId={`jp-hy2fa-ask-dialog-text-${ask.id}`}
        trans={trans}
      />
    );
  }

  protected send(key: string, _id: string, response: string): Promise<unknown> {
    return this.model.answerAsk(key, response);
  }

  protected afterUpdate(): void {
    const waiting = new Set(this.model.asks.map(ask => ask.id));
    for (const id of [...this.seen.keys()]) {
      if (!waiting.has(id) && this.current !== id) {
        this.seen.delete(id);
      }
    }
  }

  protected name(question: IWaitingQuestion, node: HTMLElement): void {
    node.dataset.askId = question.key;
  }

  private seen = new Map<string, IAsk>();
}
