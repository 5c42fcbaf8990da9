import { showErrorMessage } from '@jupyterlab/apputils';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import {
  lockIcon,
  ReactWidget,
  refreshIcon,
  UseSignal
} from '@jupyterlab/ui-components';
import React, { useEffect, useState } from 'react';

import { AsksSection } from './asks';
import { Hy2faModel, PENDING_STATES } from './model';
import { PromptForm } from './prompt';
import { ICluster, IConnection, SIDEBAR_ID } from './tokens';
import { duration, failureWords, persistWords, stateWord } from './words';

/** The "2FA connections" panel in the left area. */
export class Hy2faSidebar extends ReactWidget {
  constructor(
    readonly model: Hy2faModel,
    translator: ITranslator = nullTranslator
  ) {
    super();
    const trans = translator.load('hy2fa_lab');
    this.trans = trans;
    this.id = SIDEBAR_ID;
    this.addClass('jp-hy2fa-sidebar');
    this.title.icon = lockIcon;
    this.title.caption = trans.__('2FA connections');
    this.title.label = '';
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => <Panel model={this.model} trans={this.trans} />}
      </UseSignal>
    );
  }

  private readonly trans: TranslationBundle;
}

function act(work: Promise<unknown>): void {
  work.catch(error => {
    void showErrorMessage('2FA connections', error?.message ?? String(error));
  });
}

function Banner(props: { model: Hy2faModel }): JSX.Element | null {
  const { model } = props;
  switch (model.serverStatus) {
    case 'missing':
      return (
        <div className="jp-hy2fa-banner" data-status="missing">
          The hy2fa_lab server extension is not running, so no connection can be
          made. Check <code>jupyter server extension list</code> (it must show
          hy2fa_lab OK), then restart JupyterLab.
        </div>
      );
    case 'mismatch':
      return (
        <div className="jp-hy2fa-banner" data-status="mismatch">
          Version mismatch: the server extension is {model.serverVersion}, this
          frontend is {model.frontendVersion}. Reinstall hy2fa-lab in the
          server&apos;s environment (<code>pip install -U hy2fa-lab</code>) and
          restart JupyterLab.
        </div>
      );
    case 'unreachable':
      return (
        <div className="jp-hy2fa-banner" data-status="unreachable">
          Cannot reach the Jupyter server. Retrying…
        </div>
      );
    default:
      return null;
  }
}

function rowState(cluster: ICluster, connection?: IConnection): string {
  if (connection) {
    return connection.state;
  }
  return cluster.state === 'connected' || cluster.state === 'unresponsive'
    ? cluster.state
    : 'idle';
}

function order(model: Hy2faModel): ICluster[] {
  const rank = (cluster: ICluster): number => {
    const state = rowState(cluster, model.connectionFor(cluster));
    if (state !== 'idle') {
      return 0;
    }
    return cluster.source === 'builtin' ? 2 : 1;
  };
  return [...model.clusters]
    .map((cluster, index) => ({ cluster, index }))
    .sort((a, b) => rank(a.cluster) - rank(b.cluster) || a.index - b.index)
    .map(item => item.cluster);
}

function Panel(props: {
  model: Hy2faModel;
  trans: TranslationBundle;
}): JSX.Element {
  const { model, trans } = props;
  const [submitted, setSubmitted] = useState<Record<string, number>>({});
  const [, setTick] = useState(0);
  useEffect(() => {
    const timer = window.setInterval(() => setTick(t => t + 1), 30000);
    return () => window.clearInterval(timer);
  }, []);
  const answer = (name: string, response: string, promptId: number): void => {
    setSubmitted(s => ({ ...s, [name]: promptId }));
    act(model.answer(name, response, promptId));
  };
  return (
    <div className="jp-hy2fa-panel">
      <header className="jp-hy2fa-header">
        <h2>2FA connections</h2>
        <button
          className="jp-hy2fa-icon-button"
          title="Refresh"
          onClick={() => act(model.refresh())}
        >
          <refreshIcon.react tag="span" />
        </button>
      </header>
      <Banner model={model} />
      <AsksSection model={model} trans={trans} />
      <ul className="jp-hy2fa-rows">
        {order(model).map(cluster => (
          <Row
            key={cluster.name}
            model={model}
            cluster={cluster}
            submitted={submitted}
            onAnswer={answer}
          />
        ))}
      </ul>
    </div>
  );
}

interface IRowProps {
  model: Hy2faModel;
  cluster: ICluster;
  submitted: Record<string, number>;
  onAnswer: (name: string, response: string, promptId: number) => void;
}

function Row(props: IRowProps): JSX.Element {
  const { model, cluster } = props;
  const connection = model.connectionFor(cluster);
  const state = rowState(cluster, connection);
  const name = connection?.name ?? cluster.name;
  const where = [
    cluster.user ? `${cluster.user}@` : '',
    cluster.hostname ?? cluster.host,
    cluster.port && cluster.port !== 22 ? `:${cluster.port}` : ''
  ].join('');
  const pending = PENDING_STATES.includes(state);
  const persist = persistWords(connection?.persist ?? cluster.persist);
  return (
    <li
      className="jp-hy2fa-row"
      data-hy2fa-cluster={cluster.name}
      data-state={state}
    >
      <div className="jp-hy2fa-row-head">
        <span className="jp-hy2fa-label" title={cluster.asks ?? ''}>
          {cluster.label || cluster.name}
        </span>
        <span className={`jp-hy2fa-state jp-hy2fa-state-${state}`}>
          {stateWord(state)}
        </span>
      </div>
      <div className="jp-hy2fa-where" title={connection?.control_path ?? ''}>
        {where}
      </div>
      {state === 'connected' && (
        <div className="jp-hy2fa-since">
          {connection?.since
            ? `Connected for ${duration(connection.since)}`
            : 'Connected'}
          {persist ? ` · stays ${persist} when idle` : ''}
        </div>
      )}
      {cluster.demo_code && state !== 'connected' && (
        <div className="jp-hy2fa-demo-code">
          demo code: <code>{cluster.demo_code}</code>
        </div>
      )}
      {cluster.error && (
        <div className="jp-hy2fa-error">{cluster.error.message}</div>
      )}
      {state === 'prompting' && connection && (
        <PromptForm
          connection={connection}
          submitted={props.submitted[name]}
          onAnswer={(response, promptId) =>
            props.onAnswer(name, response, promptId)
          }
        />
      )}
      {state === 'unresponsive' && (
        <div className="jp-hy2fa-error" role="alert">
          {connection?.message || cluster.message}
        </div>
      )}
      {state === 'failed' && connection && (
        <div className="jp-hy2fa-error" role="alert">
          {failureWords(connection, cluster)}
        </div>
      )}
      <div className="jp-hy2fa-actions">
        {pending ? (
          <button
            className="jp-mod-styled jp-mod-reject"
            data-action="cancel"
            onClick={() => act(model.disconnect(name))}
          >
            Cancel
          </button>
        ) : state === 'connected' ? (
          <button
            className="jp-mod-styled"
            data-action="disconnect"
            onClick={() => act(model.disconnect(name))}
          >
            Disconnect
          </button>
        ) : (
          <button
            className="jp-mod-styled jp-mod-accept"
            data-action="connect"
            disabled={model.serverStatus === 'missing'}
            onClick={() => act(model.connect(cluster.name))}
          >
            {state === 'failed'
              ? 'Retry'
              : state === 'unresponsive'
                ? 'Check again'
                : 'Connect'}
          </button>
        )}
      </div>
    </li>
  );
}
