import { showErrorMessage } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import React, { useRef, useState } from 'react';

import { AnswerField } from './prompt';
import { IAsk, IHy2faModel } from './tokens';
import { askTitle, commandLine, originWords } from './words';

const FINGERPRINT = /(SHA256:[A-Za-z0-9+/=]+|MD5(?::[0-9a-f]{2})+)/;

/** ssh's words verbatim, with a host key's fingerprint set off. */
function AskText(props: { ask: IAsk; id?: string }): JSX.Element {
  const { text, kind } = props.ask.prompt;
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
 * What ssh asks in its own words, and who asks: the command line of the ssh (monospace)
 * and the notebook whose kernel started it.
 */
export function AskDetails(props: {
  ask: IAsk;
  trans: TranslationBundle;
  textId?: string;
  /** One line for the command (the sidebar); its whole text is then its tooltip. */
  compact?: boolean;
}): JSX.Element {
  const { ask, trans } = props;
  const command = commandLine(ask.command);
  return (
    <div
      className={`jp-hy2fa-ask-details${props.compact ? ' jp-mod-compact' : ''}`}
    >
      <AskText ask={ask} id={props.textId} />
      {command && (
        <code
          className="jp-hy2fa-ask-command"
          title={
            props.compact
              ? command
              : trans.__('The command of the ssh that asks')
          }
        >
          {command}
        </code>
      )}
      <div
        className="jp-hy2fa-ask-origin"
        title={trans.__('process %1', ask.origin.pid)}
      >
        {originWords(ask, trans)}
      </div>
    </div>
  );
}

interface IAskItemProps {
  ask: IAsk;
  model: IHy2faModel;
  trans: TranslationBundle;
}

/** One waiting ask in the sidebar, with the same actions as its dialog. */
function AskItem(props: IAskItemProps): JSX.Element {
  const { ask, model, trans } = props;
  const inputRef = useRef<HTMLInputElement>(null);
  const [busy, setBusy] = useState(false);
  const textId = `jp-hy2fa-ask-text-${ask.id}`;
  const run = (work: Promise<void>): void => {
    setBusy(true);
    work.catch(error => {
      setBusy(false);
      void showErrorMessage(
        trans.__('Questions from ssh'),
        error?.message ?? String(error)
      );
    });
  };
  const answer = (response: string): void => {
    run(model.answerAsk(ask.id, response));
  };
  const cancel = (
    <button
      type="button"
      className="jp-mod-styled jp-mod-reject"
      data-action="cancel-ask"
      title={trans.__('End the ssh that asks')}
      disabled={busy}
      onClick={() => run(model.cancelAsk(ask.id))}
    >
      {trans.__('Cancel')}
    </button>
  );
  return (
    <li
      className="jp-hy2fa-ask-item"
      data-ask-id={ask.id}
      data-prompt-kind={ask.prompt.kind}
      aria-label={askTitle(ask, trans)}
      aria-describedby={textId}
    >
      <div className="jp-hy2fa-ask-head">{askTitle(ask, trans)}</div>
      <AskDetails ask={ask} trans={trans} textId={textId} compact />
      {busy ? (
        <div className="jp-hy2fa-checking">{trans.__('Sending…')}</div>
      ) : ask.prompt.kind === 'hostkey' ? (
        <div className="jp-hy2fa-hostkey">
          <button
            type="button"
            className="jp-mod-styled jp-mod-accept"
            data-action="trust"
            title={trans.__('Trust this host key and connect')}
            onClick={() => answer('yes')}
          >
            {trans.__('Trust')}
          </button>
          <button
            type="button"
            className="jp-mod-styled jp-mod-warn"
            data-action="refuse"
            title={trans.__('Do not trust this host key: ssh stops')}
            onClick={() => answer('no')}
          >
            {trans.__('Refuse')}
          </button>
          {cancel}
        </div>
      ) : (
        <div className="jp-hy2fa-ask-answer">
          <AnswerField
            prompt={ask.prompt}
            inputRef={inputRef}
            onSubmit={answer}
            onOption={answer}
            autoComplete="off"
            autoFocus={false}
            trans={trans}
          />
          {cancel}
        </div>
      )}
    </li>
  );
}

/** "Questions from ssh": every waiting ask of a kernel's ssh, above the clusters. */
export function AsksSection(props: {
  model: IHy2faModel;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { model, trans } = props;
  const asks = model.asks;
  if (asks.length === 0) {
    return null;
  }
  return (
    <section className="jp-hy2fa-asks" aria-labelledby="jp-hy2fa-asks-title">
      <h3 id="jp-hy2fa-asks-title" className="jp-hy2fa-asks-title">
        {trans.__('Questions from ssh')}
      </h3>
      <ul className="jp-hy2fa-ask-list">
        {asks.map(ask => (
          <AskItem key={ask.id} ask={ask} model={model} trans={trans} />
        ))}
      </ul>
    </section>
  );
}
