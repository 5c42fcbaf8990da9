import type { TranslationBundle } from '@jupyterlab/translation';
import React, { useEffect, useId, useRef } from 'react';

import { useNow } from './progress';
import { IAskPrompt, IConnection, IPrompt } from './tokens';
import {
  menuTitle,
  promptHostWords,
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
  prompt: IPrompt;
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
  /**
   * Whether the field takes the focus when a prompt appears. Asked once per prompt; the
   * sidebar says yes only when the person is in it (never from a notebook cell).
   */
  takeFocus?: () => boolean;
  trans: TranslationBundle;
}

/**
 * A prompt in the cluster's own words and the field to answer it: which host asks
 * (through a bastion, the jump host first), a password field (never for host keys),
 * Duo's options as buttons and a passcode field, Trust/Reject for a new host key, and how
 * long the login still waits.
 */
export function PromptForm(props: IPromptFormProps): JSX.Element | null {
  const ownRef = useRef<HTMLInputElement>(null);
  const ref = props.inputRef ?? ownRef;
  const { trans, takeFocus } = props;
  const prompt = props.connection.prompt;
  const waiting = prompt !== null && props.submitted === prompt.id;
  const promptId = prompt?.id;
  useEffect(() => {
    if (promptId !== undefined && !waiting && takeFocus?.()) {
      ref.current?.focus();
    }
  }, [promptId, waiting]);
  if (!prompt) {
    return null;
  }
  const send = (value: string): void => {
    props.onAnswer(value, prompt.id);
  };
  const keyDown = (event: React.KeyboardEvent): void => {
    if (event.key === 'Escape' && props.onCancel && !event.defaultPrevented) {
      event.preventDefault();
      props.onCancel();
    }
  };
  const menu = prompt.options.length > 0;
  const host = promptHostWords(prompt.host, trans);
  return (
    <div
      className="jp-hy2fa-prompt"
      data-prompt-kind={prompt.kind}
      data-prompt-id={prompt.id}
      onKeyDown={keyDown}
    >
      {host && (
        <div className="jp-hy2fa-prompt-host" data-host={prompt.host}>
          {host}
        </div>
      )}
      {menu ? (
        <>
          <div className="jp-hy2fa-prompt-title">
            {menuTitle(prompt.text, prompt.host)}
          </div>
          <details className="jp-hy2fa-prompt-details">
            <summary>{trans.__('What ssh asked')}</summary>
            <pre className="jp-hy2fa-prompt-text" tabIndex={-1}>
              {prompt.text}
            </pre>
          </details>
        </>
      ) : (
        <pre className="jp-hy2fa-prompt-text" tabIndex={-1}>
          {prompt.text}
        </pre>
      )}
      {props.connection.message && (
        <div className="jp-hy2fa-message" role="alert">
          {props.connection.message}
        </div>
      )}
      {waiting ? (
        <div className="jp-hy2fa-checking">{trans.__('Checking…')}</div>
      ) : prompt.kind === 'hostkey' ? (
        <div className="jp-hy2fa-hostkey">
          {!props.inDialog && (
            <>
              <button
                className="jp-mod-styled jp-mod-warn"
                data-action="trust"
                onClick={() => send('yes')}
              >
                {trans.__('Trust')}
              </button>
              <button
                className="jp-mod-styled jp-mod-reject"
                data-action="reject"
                onClick={() => send('no')}
              >
                {trans.__('Reject')}
              </button>
            </>
          )}
        </div>
      ) : (
        <AnswerField
          prompt={prompt}
          inputRef={ref}
          onSubmit={props.inDialog ? undefined : send}
          onOption={send}
          onCancel={props.onCancel}
          autoComplete="one-time-code"
          autoFocus={false}
          label={prompt.text.trim() || trans.__('Answer')}
          trans={trans}
        />
      )}
      {!waiting && (
        <TimeLeft
          prompt={prompt}
          since={props.connection.updated}
          trans={trans}
        />
      )}
    </div>
  );
}
