import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import React, { useRef } from 'react';

import { IConnection, IPrompt } from './tokens';

/** What a field needs to know of a question: ssh's words and how they are answered. */
export type PromptShape = Pick<IPrompt, 'kind' | 'text' | 'options' | 'secret'>;

const NUMERIC = new Set(['otp', 'duo']);

const defaultTrans = (): TranslationBundle => nullTranslator.load('hy2fa_lab');

export interface IAnswerFieldProps {
  prompt: PromptShape;
  inputRef: React.RefObject<HTMLInputElement>;
  /**
   * The typed answer (the field is emptied first). Absent in a dialog, whose own buttons
   * submit (Enter included): then there is no submit button here.
   */
  onSubmit?: (value: string) => void;
  /** One of the prompt's options (Duo's menu) was picked: its number, as ssh expects. */
  onOption: (response: string) => void;
  autoComplete: string;
  autoFocus?: boolean;
  /** The field's accessible name (default: ssh's question). */
  label?: string;
  trans?: TranslationBundle;
}

/**
 * The field that answers one question: a password field for a secret, a text field
 * otherwise, and the prompt's options (Duo's menu) as buttons.
 */
export function AnswerField(props: IAnswerFieldProps): JSX.Element {
  const { prompt } = props;
  const trans = props.trans ?? defaultTrans();
  const numeric = NUMERIC.has(prompt.kind);
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
  return (
    <form className="jp-hy2fa-answer" onSubmit={submit}>
      <input
        ref={props.inputRef}
        className="jp-mod-styled jp-hy2fa-code"
        type={prompt.secret ? 'password' : 'text'}
        autoComplete={props.autoComplete}
        autoCapitalize="off"
        spellCheck={false}
        inputMode={numeric ? 'numeric' : 'text'}
        aria-label={props.label ?? prompt.text}
        placeholder={numeric ? trans.__('code') : trans.__('answer')}
        autoFocus={props.autoFocus ?? true}
      />
      {props.onSubmit && (
        <button type="submit" className="jp-mod-styled jp-mod-accept">
          {trans.__('Submit')}
        </button>
      )}
      {prompt.options.length > 0 && (
        <div className="jp-hy2fa-options">
          {prompt.options.map((option, index) => (
            <button
              key={option}
              type="button"
              className="jp-mod-styled"
              data-option={index + 1}
              onClick={() => props.onOption(String(index + 1))}
            >
              {option}
            </button>
          ))}
        </div>
      )}
    </form>
  );
}

export interface IPromptFormProps {
  connection: IConnection;
  /** Send the answer; the caller must not keep it. */
  onAnswer: (response: string, promptId: number) => void;
  /** The prompt id already answered here (shows "Checking…" until ssh asks again). */
  submitted?: number;
  /** In a dialog the dialog's own buttons submit (Enter included): no submit button here. */
  inDialog?: boolean;
  inputRef?: React.RefObject<HTMLInputElement>;
  trans?: TranslationBundle;
}

/**
 * A prompt in the cluster's own words and the field to answer it: a password field (never
 * for host keys), Duo's options as buttons, Trust/Reject for a new host key.
 */
export function PromptForm(props: IPromptFormProps): JSX.Element | null {
  const ownRef = useRef<HTMLInputElement>(null);
  const ref = props.inputRef ?? ownRef;
  const trans = props.trans ?? defaultTrans();
  const prompt = props.connection.prompt;
  if (!prompt) {
    return null;
  }
  const send = (value: string): void => {
    props.onAnswer(value, prompt.id);
  };
  const waiting = props.submitted === prompt.id;
  return (
    <div className="jp-hy2fa-prompt" data-prompt-kind={prompt.kind}>
      <pre className="jp-hy2fa-prompt-text">{prompt.text}</pre>
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
          autoComplete="one-time-code"
          trans={trans}
        />
      )}
    </div>
  );
}
