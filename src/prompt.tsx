import React, { useRef } from 'react';

import { IConnection } from './tokens';

export interface IPromptFormProps {
  connection: IConnection;
  /** Send the answer; the caller must not keep it. */
  onAnswer: (response: string, promptId: number) => void;
  /** The prompt id already answered here (shows "Checking…" until ssh asks again). */
  submitted?: number;
  /** In a dialog the dialog's own buttons submit (Enter included): no submit button here. */
  inDialog?: boolean;
  inputRef?: React.RefObject<HTMLInputElement>;
}

const NUMERIC = new Set(['otp', 'duo']);

/**
 * A prompt in the cluster's own words and the field to answer it: a password field (never
 * for host keys), Duo's options as buttons, Trust/Reject for a new host key.
 */
export function PromptForm(props: IPromptFormProps): JSX.Element | null {
  const ownRef = useRef<HTMLInputElement>(null);
  const ref = props.inputRef ?? ownRef;
  const prompt = props.connection.prompt;
  if (!prompt) {
    return null;
  }
  const send = (value: string): void => {
    props.onAnswer(value, prompt.id);
  };
  const submit = (event?: React.FormEvent): void => {
    event?.preventDefault();
    const input = ref.current;
    if (!input || input.value.length === 0) {
      return;
    }
    const value = input.value;
    input.value = ''; // cleared at once: the code stays nowhere in the page
    send(value);
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
        <div className="jp-hy2fa-checking">Checking…</div>
      ) : prompt.kind === 'hostkey' ? (
        <div className="jp-hy2fa-hostkey">
          {!props.inDialog && (
            <>
              <button
                className="jp-mod-styled jp-mod-warn"
                data-action="trust"
                onClick={() => send('yes')}
              >
                Trust
              </button>
              <button
                className="jp-mod-styled jp-mod-reject"
                data-action="reject"
                onClick={() => send('no')}
              >
                Reject
              </button>
            </>
          )}
        </div>
      ) : (
        <form className="jp-hy2fa-answer" onSubmit={submit}>
          <input
            ref={ref}
            className="jp-mod-styled jp-hy2fa-code"
            type={prompt.secret ? 'password' : 'text'}
            autoComplete="one-time-code"
            inputMode={NUMERIC.has(prompt.kind) ? 'numeric' : 'text'}
            aria-label={prompt.text}
            placeholder={NUMERIC.has(prompt.kind) ? 'code' : 'answer'}
            autoFocus
          />
          {!props.inDialog && (
            <button type="submit" className="jp-mod-styled jp-mod-accept">
              Submit
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
                  onClick={() => send(String(index + 1))}
                >
                  {option}
                </button>
              ))}
            </div>
          )}
        </form>
      )}
    </div>
  );
}
