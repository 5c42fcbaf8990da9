import { showErrorMessage } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import React, { useState } from 'react';

import { Question } from './prompt';
import { IAsk, IHy2faModel } from './tokens';
import { askedAt, askTitle, commandLine, originWords } from './words';

/**
 * Who asks: the command line of the ssh (monospace) and the notebook whose kernel started
 * it. ssh's words themselves are the question's ({@link Question}).
 */
export function AskFrom(props: {
  ask: IAsk;
  trans: TranslationBundle;
  /** One line for the command (the sidebar); its whole text is then its tooltip. */
  compact?: boolean;
}): JSX.Element {
  const { ask, trans } = props;
  const command = commandLine(ask.command);
  return (
    <div
      className={`jp-hy2fa-ask-details${props.compact ? ' jp-mod-compact' : ''}`}
    >
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

/** One waiting ask in the sidebar: the same question, and the same answers, as its dialog. */
function AskItem(props: IAskItemProps): JSX.Element {
  const { ask, model, trans } = props;
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
  const cancel = (): void => run(model.cancelAsk(ask.id));
  return (
    <li
      className="jp-hy2fa-ask-item"
      data-ask-id={ask.id}
      data-prompt-kind={ask.prompt.kind}
      aria-label={askTitle(ask, trans)}
      aria-describedby={textId}
    >
      <div className="jp-hy2fa-ask-head">{askTitle(ask, trans)}</div>
      <Question
        prompt={ask.prompt}
        questionId={ask.id}
        since={askedAt(ask)}
        details={<AskFrom ask={ask} trans={trans} compact />}
        busy={busy ? trans.__('Sending…') : null}
        onAnswer={response => run(model.answerAsk(ask.id, response))}
        onCancel={busy ? undefined : cancel}
        cancelButton={
          <button
            type="button"
            className="jp-mod-styled jp-mod-reject"
            data-action="cancel-ask"
            title={trans.__('End the ssh that asks')}
            onClick={cancel}
          >
            {trans.__('Cancel')}
          </button>
        }
        autoComplete="off"
        textId={textId}
        trans={trans}
      />
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
