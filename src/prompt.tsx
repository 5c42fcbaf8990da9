import type { TranslationBundle } from '@jupyterlab/translation';
import React, { useEffect, useId, useRef } from 'react';

import { useNow } from './progress';
import { IAskPrompt, IConnection, IPrompt } from './tokens';
import {
  hostKeyAnswers,
  menuTitle,
  promptHostWords,
  questionHost,
  secondsUntil,
  secondsWords
} from './words';

const NUMERIC: ReadonlySet<IAskPrompt['kind']> = new Set(['otp', 'duo']);

export interface IAnswerFieldProps {
  /** What a field needs to know of a question: ssh's words and how they are answered. */
  prompt: IAskPrompt;
  inputRef: React.RefObject<HTMLInputElement>;
  /**
   * The typed answer (the field is emptied first). Absent in a dialog, whose own buttons
   * submit (Enter included): then there is no submit button here.
   */
  onSubmit?: (value: string) => void;
  /** One of the prompt's options (Duo's menu) was picked: its number, as ssh expects. */
  onOption: (response: string) => void;
  /** Escape in the field (absent in a dialog, where Escape closes the dialog). */
  onCancel?: () => void;
  autoComplete: string;
  autoFocus?: boolean;
  /** The field's accessible name (default: ssh's question). */
  label?: string;
  trans: TranslationBundle;
}

/**
 * The field that answers one question: a password field for a secret, a text field
 * otherwise. A menu (Duo's) is one button per option, in ssh's words, and the field
 * below them takes a passcode instead.
 */
export function AnswerField(props: IAnswerFieldProps): JSX.Element {
  const { prompt, trans } = props;
  const passcodeId = useId();
  const numeric = NUMERIC.has(prompt.kind);
  const menu = prompt.options.length > 0;
  const submit = (event: React.FormEvent): void => {
    event.preventDefault();
    const input = props.inputRef.current;
    if (!props.onSubmit || !input || input.value.length === 0) {
      return;
    }
    const value = input.value;
    input.value = ''; // cleared at once: the answer stays nowhere in the page
    props.onSubmit(value);
  };
  const keyDown = (event: React.KeyboardEvent<HTMLInputElement>): void => {
    if (event.key === 'Escape' && props.onCancel) {
      event.preventDefault();
      event.stopPropagation();
      event.currentTarget.value = '';
      props.onCancel();
    }
  };
  const field = (
    <input
      ref={props.inputRef}
      id={menu ? passcodeId : undefined}
      className="jp-mod-styled jp-hy2fa-code"
      type={prompt.secret ? 'password' : 'text'}
      autoComplete={props.autoComplete}
      autoCapitalize="off"
      spellCheck={false}
      inputMode={numeric ? 'numeric' : 'text'}
      aria-label={
        menu ? trans.__('Passcode') : (props.label ?? prompt.text.trim())
      }
      placeholder={
        menu
          ? trans.__('passcode')
          : numeric
            ? trans.__('code')
            : trans.__('answer')
      }
      autoFocus={props.autoFocus ?? true}
      onKeyDown={keyDown}
    />
  );
  const submitButton = props.onSubmit && (
    <button type="submit" className="jp-mod-styled jp-mod-accept">
      {trans.__('Submit')}
    </button>
  );
  if (!menu) {
    return (
      <form className="jp-hy2fa-answer" onSubmit={submit}>
        {field}
        {submitButton}
      </form>
    );
  }
  return (
    <form className="jp-hy2fa-answer jp-mod-menu" onSubmit={submit}>
      <div
        className="jp-hy2fa-options"
        role="group"
        aria-label={trans.__('Log in with')}
      >
        {prompt.options.map((option, index) => (
          <button
            key={`${index}:${option}`}
            type="button"
            className="jp-mod-styled jp-mod-accept jp-hy2fa-option"
            data-option={index + 1}
            onClick={() => props.onOption(String(index + 1))}
          >
            {option}
          </button>
        ))}
      </div>
      <label className="jp-hy2fa-passcode-label" htmlFor={passcodeId}>
        {trans.__('or type a passcode')}
      </label>
      <div className="jp-hy2fa-passcode">
        {field}
        {submitButton}
      </div>
    </form>
  );
}

/**
 * How long the login still waits for an answer (until `prompt.expires`), ticking. It says
 * nothing of how long a code is valid, which only the cluster knows.
 */
export function TimeLeft(props: {
  prompt: QuestionPrompt;
  /** When the prompt came (the server's clock, as `expires`): caps a skewed clock. */
  since: string | null;
  trans: TranslationBundle;
}): JSX.Element | null {
  const expires = props.prompt.expires ?? null;
  const now = useNow(expires !== null);
  const left = secondsUntil(expires, now, props.since);
  if (left === null) {
    return null;
  }
  const words = secondsWords(left, props.trans);
  return (
    <div
      className={`jp-hy2fa-time-left${left <= 15 ? ' jp-mod-warn' : ''}`}
      role="timer"
      data-seconds={left}
      aria-label={props.trans.__('Waiting for your answer: %1 left', words)}
    >
      {props.trans.__('Waiting for your answer: %1 left', words)}
    </div>
  );
}

const FINGERPRINT = /(SHA256:[A-Za-z0-9+/=]+|MD5(?::[0-9a-f]{2})+)/;

/** What the question component needs of a question, from a connection or an ask. */
export type QuestionPrompt = IAskPrompt &
  Partial<Pick<IPrompt, 'id' | 'expires' | 'host'>>;

/** ssh's words verbatim, with a host key's fingerprint set off. */
export function QuestionText(props: {
  prompt: IAskPrompt;
  id?: string;
}): JSX.Element {
  const { text, kind } = props.prompt;
  const parts = kind === 'hostkey' ? text.split(FINGERPRINT) : [text];
  return (
    <pre className="jp-hy2fa-prompt-text" id={props.id} tabIndex={-1}>
      {parts.map((part, index) =>
        index % 2 === 1 ? (
          <strong key={index} className="jp-hy2fa-fingerprint">
            {part}
          </strong>
        ) : (
          part
        )
      )}
    </pre>
  );
}

/**
 * Trust and Reject for a new host key, beside the question (a dialog has them in its
 * footer instead, with the same words).
 */
export function HostKeyButtons(props: {
  onAnswer: (response: string) => void;
  trans: TranslationBundle;
  children?: React.ReactNode;
}): JSX.Element {
  return (
    <div className="jp-hy2fa-hostkey">
      {hostKeyAnswers(props.trans).map(answer => (
        <button
          key={answer.action}
          type="button"
          className={`jp-mod-styled ${answer.response === 'yes' ? 'jp-mod-accept' : 'jp-mod-warn'}`}
          data-action={answer.action}
          title={answer.caption}
          onClick={() => props.onAnswer(answer.response)}
        >
          {answer.label}
        </button>
      ))}
      {props.children}
    </div>
  );
}

export interface IQuestionProps {
  /** ssh's question: a connection's prompt or an ask's. */
  prompt: QuestionPrompt;
  /**
   * Names this question among the ones that come after it (a prompt's id, an ask's id):
   * the field takes the focus again when it changes (see `takeFocus`).
   */
  questionId: string | number;
  /** When the question came (the server's clock, as `expires`): caps the time left. */
  since?: string | null;
  /** What became of the last answer ("Wrong code — try again"). */
  message?: string;
  /** More about who asks, after ssh's words (the command and notebook of a kernel's ssh). */
  details?: React.ReactNode;
  /** An answer is on its way: these words ("Checking…") instead of the field. */
  busy?: string | null;
  /** In a dialog, whose footer submits, trusts and rejects: no buttons for those here. */
  inDialog?: boolean;
  /** Send an answer (typed, a menu option, yes or no); the caller must not keep it. */
  onAnswer: (response: string) => void;
  /** Escape (outside a dialog, whose own Escape closes it). */
  onCancel?: () => void;
  /** A button beside the answer (an ask's Cancel in the sidebar). */
  cancelButton?: React.ReactNode;
  inputRef?: React.RefObject<HTMLInputElement>;
  autoComplete: string;
  /**
   * Whether the field takes the focus when a question appears. Asked once per question;
   * the sidebar says yes only when the person is in it (never from a notebook cell).
   */
  takeFocus?: () => boolean;
  /** The id of ssh's words (a list item is described by them). */
  textId?: string;
  trans: TranslationBundle;
}

/**
 * One question of ssh, the same wherever it is asked (a connection's login or a kernel's
 * ssh; a sidebar row or a dialog): which host it is for; ssh's words verbatim, a host key's
 * fingerprint set off and always in view (a Duo menu's title, its words folded under "What
 * ssh asked": its options are buttons); who asks; what became of the last answer; then the
 * answer: Trust and Reject for a host key, Duo's options as buttons beside a passcode
 * field, else a password field for a secret or a text field; and how long the login
 * still waits.
 */
export function Question(props: IQuestionProps): JSX.Element {
  const ownRef = useRef<HTMLInputElement>(null);
  const ref = props.inputRef ?? ownRef;
  const { prompt, trans, takeFocus } = props;
  const busy = props.busy ?? null;
  useEffect(() => {
    if (busy === null && takeFocus?.()) {
      ref.current?.focus();
    }
  }, [props.questionId, busy]);
  const keyDown = (event: React.KeyboardEvent): void => {
    if (event.key === 'Escape' && props.onCancel && !event.defaultPrevented) {
      event.preventDefault();
      props.onCancel();
    }
  };
  const hostkey = prompt.kind === 'hostkey';
  const menu = !hostkey && prompt.options.length > 0;
  const host = questionHost(prompt);
  let answer: React.ReactNode;
  if (busy !== null) {
    answer = <div className="jp-hy2fa-checking">{busy}</div>;
  } else if (hostkey) {
    answer = props.inDialog ? null : (
      <HostKeyButtons onAnswer={props.onAnswer} trans={trans}>
        {props.cancelButton}
      </HostKeyButtons>
    );
  } else {
    answer = (
      <div className="jp-hy2fa-answer-row">
        <AnswerField
          prompt={prompt}
          inputRef={ref}
          onSubmit={props.inDialog ? undefined : props.onAnswer}
          onOption={props.onAnswer}
          onCancel={props.onCancel}
          autoComplete={props.autoComplete}
          autoFocus={false}
          label={prompt.text.trim() || trans.__('Answer')}
          trans={trans}
        />
        {props.cancelButton}
      </div>
    );
  }
  return (
    <div
      className="jp-hy2fa-prompt jp-hy2fa-question"
      data-prompt-kind={prompt.kind}
      data-prompt-id={prompt.id}
      onKeyDown={keyDown}
    >
      {host && (
        <div className="jp-hy2fa-prompt-host" data-host={host}>
          {promptHostWords(host, trans)}
        </div>
      )}
      {menu ? (
        <>
          <div className="jp-hy2fa-prompt-title">
            {menuTitle(prompt.text, host)}
          </div>
          <details className="jp-hy2fa-prompt-details">
            <summary>{trans.__('What ssh asked')}</summary>
            <QuestionText prompt={prompt} id={props.textId} />
          </details>
        </>
      ) : (
        <QuestionText prompt={prompt} id={props.textId} />
      )}
      {props.details}
      {props.message && (
        <div className="jp-hy2fa-message" role="alert">
          {props.message}
        </div>
      )}
      {answer}
      {busy === null && (
        <TimeLeft prompt={prompt} since={props.since ?? null} trans={trans} />
      )}
    </div>
  );
}

export interface IPromptFormProps {
  connection: IConnection;
  /** Send the answer; the caller must not keep it. */
  onAnswer: (response: string, promptId: number) => void;
  /** Escape: cancel the login (the sidebar; a dialog's Escape closes the dialog). */
  onCancel?: () => void;
  /** The prompt id already answered here (shows "Checking…" until ssh asks again). */
  submitted?: number;
  /** In a dialog the dialog's own buttons submit (Enter included): no submit button here. */
  inDialog?: boolean;
  inputRef?: React.RefObject<HTMLInputElement>;
  /** See {@link IQuestionProps.takeFocus}. */
  takeFocus?: () => boolean;
  trans: TranslationBundle;
}

/** A connection's prompt as a {@link Question}. */
export function PromptForm(props: IPromptFormProps): JSX.Element | null {
  const { connection, trans } = props;
  const prompt = connection.prompt;
  if (!prompt) {
    return null;
  }
  return (
    <Question
      prompt={prompt}
      questionId={prompt.id}
      since={connection.updated}
      message={connection.message}
      busy={props.submitted === prompt.id ? trans.__('Checking…') : null}
      inDialog={props.inDialog}
      onAnswer={response => props.onAnswer(response, prompt.id)}
      onCancel={props.onCancel}
      inputRef={props.inputRef}
      autoComplete="one-time-code"
      takeFocus={props.takeFocus}
      trans={trans}
    />
  );
}
