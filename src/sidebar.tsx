import { showErrorMessage } from '@jupyterlab/apputils';
import type { TranslationBundle } from '@jupyterlab/translation';
import {
  addIcon,
  caretDownIcon,
  caretRightIcon,
  editIcon,
  LabIcon,
  lockIcon,
  ReactWidget,
  refreshIcon,
  UseSignal
} from '@jupyterlab/ui-components';
import React, { useEffect, useRef, useState } from 'react';

import { arrange, matches } from './arrange';
import { AsksSection } from './asks';
import { CertificateLine, NoCertificateLine } from './certificate';
import {
  AddClusterForm,
  connectAsking,
  editButtonId,
  EditForm,
  yoursWords
} from './clusterforms';
import { checkSetupIcon } from './doctor';
import { ApiError, isUnsupported } from './errors';
import { MastersSection } from './masters';
import { PENDING_STATES } from './model';
import { ClusterPrefs } from './prefs';
import { Progress } from './progress';
import { PromptForm } from './prompt';
import {
  ConnectionState,
  ICluster,
  IConnection,
  IHy2faModel,
  SIDEBAR_ID
} from './tokens';
import {
  duration,
  failureWords,
  isPush,
  persistWords,
  stateWord
} from './words';

/** A push pin, for the pin toggle of a row. */
export const pinIcon = new LabIcon({
  name: 'hy2fa-lab:pin',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">' +
    '<path class="jp-icon3" fill="#616161" d="M10.2 1.2 14.8 5.8 13.4 6.6 11 9 11.4 12.6 ' +
    '10.2 13.8 7.2 10.8 2.6 15.4 1.6 15.4 1.6 14.4 6.2 9.8 3.2 6.8 4.4 5.6 8 6 10.4 3.6Z"/>' +
    '</svg>'
});

/** The id of the banner that says no master can be made here (Connect buttons point to it). */
const UNSUPPORTED_ID = 'jp-hy2fa-unsupported';

/** The "2FA connections" panel in the left area. */
export class Hy2faSidebar extends ReactWidget {
  constructor(
    readonly model: IHy2faModel,
    private readonly trans: TranslationBundle,
    readonly prefs: ClusterPrefs = new ClusterPrefs(model),
    /** Open "Check my setup" (the header's button; none without it). */
    private readonly checkSetup?: () => void
  ) {
    super();
    this.id = SIDEBAR_ID;
    this.addClass('jp-hy2fa-sidebar');
    this.title.icon = lockIcon;
    this.title.caption = trans.__('2FA connections');
    this.title.label = '';
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.prefs.changed}>
        {() => (
          <UseSignal signal={this.model.changed}>
            {() => (
              <Panel
                model={this.model}
                prefs={this.prefs}
                trans={this.trans}
                visible={() => this.isVisible}
                checkSetup={this.checkSetup}
              />
            )}
          </UseSignal>
        )}
      </UseSignal>
    );
  }
}

/**
 * Run an action of the sidebar; a failure says so in a dialog. Where no master can be made
 * at all (501 `unsupported`), the sidebar's banner says it once instead.
 */
function act(work: Promise<unknown>, trans: TranslationBundle): void {
  work.catch(error => {
    if (isUnsupported(error)) {
      return;
    }
    void showErrorMessage(
      trans.__('2FA connections'),
      error?.message ?? String(error)
    );
  });
}

/** Stands for an element in a translated sentence, which is then split around it. */
const SLOT = '\u0000';

/**
 * A translated sentence with elements in it: `text` is the translation, made with
 * `SLOT` for each element's argument; the elements go where the slots are.
 */
function withElements(text: string, ...elements: JSX.Element[]): JSX.Element {
  const parts = text.split(SLOT);
  return (
    <>
      {parts.map((part, index) => (
        <React.Fragment key={index}>
          {part}
          {index < elements.length && elements[index]}
        </React.Fragment>
      ))}
    </>
  );
}

function Banner(props: {
  model: IHy2faModel;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { model, trans } = props;
  switch (model.serverStatus) {
    case 'missing':
      return (
        <div className="jp-hy2fa-banner" data-status="missing" role="alert">
          {withElements(
            trans.__(
              'The hy2fa_lab server extension is not running, so no connection can be made. Check %1 (it must show hy2fa_lab OK), then restart JupyterLab.',
              SLOT
            ),
            <code>jupyter server extension list</code>
          )}
        </div>
      );
    case 'mismatch':
      return (
        <div className="jp-hy2fa-banner" data-status="mismatch" role="alert">
          {withElements(
            trans.__(
              "Version mismatch: the server extension is %1, this frontend is %2. Reinstall hy2fa-lab in the server's environment (%3) and restart JupyterLab.",
              model.serverVersion ?? '',
              model.frontendVersion,
              SLOT
            ),
            <code>pip install -U hy2fa-lab</code>
          )}
        </div>
      );
    case 'unreachable':
      return (
        <div className="jp-hy2fa-banner" data-status="unreachable" role="alert">
          {trans.__('Cannot reach the Jupyter server. Retrying…')}
        </div>
      );
    default:
      return null;
  }
}

/**
 * What cannot work on this server, said once for the whole sidebar (not per row): no
 * ControlMaster with its ssh (a connect answered 501), and why kernels' ssh cannot ask
 * here (the askpass bridge is off). The same words twice are said once.
 */
function Limits(props: {
  model: IHy2faModel;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { model, trans } = props;
  const unsupported = model.unsupported;
  const asks = model.asksMessage;
  return (
    <div className="jp-hy2fa-limits" aria-live="polite">
      {unsupported && (
        <div
          className="jp-hy2fa-banner"
          id={UNSUPPORTED_ID}
          data-status="unsupported"
          role="alert"
        >
          <strong>{trans.__('No connection can be made here.')}</strong>{' '}
          {unsupported}
        </div>
      )}
      {asks && asks !== unsupported && (
        <div className="jp-hy2fa-note" data-status="asks-off" role="note">
          <strong>{trans.__('Questions from ssh are off.')}</strong> {asks}
        </div>
      )}
    </div>
  );
}

function rowState(
  cluster: ICluster,
  connection?: IConnection
): ConnectionState {
  if (connection) {
    return connection.state;
  }
  return cluster.state === 'connected' || cluster.state === 'unresponsive'
    ? cluster.state
    : 'idle';
}

interface IPanelProps {
  model: IHy2faModel;
  prefs: ClusterPrefs;
  trans: TranslationBundle;
  /** Whether the sidebar is shown. */
  visible: () => boolean;
  /** Open "Check my setup". */
  checkSetup?: () => void;
}

function Panel(props: IPanelProps): JSX.Element {
  const { model, prefs, trans } = props;
  const root = useRef<HTMLDivElement>(null);
  const [submitted, setSubmitted] = useState<Record<string, number>>({});
  const [filter, setFilter] = useState('');
  // One form at a time: a row's settings (its cluster's name), or "Add a cluster".
  const [editing, setEditing] = useState<string | null>(null);
  const [adding, setAdding] = useState(false);
  // What takes the focus once the sidebar has rendered (a closed form's button, a new row).
  const [focusTarget, setFocusTarget] = useState<string | null>(null);
  useEffect(() => {
    if (focusTarget) {
      document.getElementById(focusTarget)?.focus();
      setFocusTarget(null);
    }
  }, [focusTarget]);
  const [, setTick] = useState(0);
  useEffect(() => {
    const timer = window.setInterval(() => setTick(t => t + 1), 30000);
    return () => window.clearInterval(timer);
  }, []);
  const answer = (key: string, response: string, promptId: number): void => {
    setSubmitted(s => ({ ...s, [key]: promptId }));
    act(
      model.answer(key, response, promptId).catch(error => {
        // Not taken: the field shows again (empty) for the prompt that waits now.
        setSubmitted(s => {
          const rest = { ...s };
          delete rest[key];
          return rest;
        });
        if (error instanceof ApiError && error.status === 409) {
          return; // that prompt moved on (answered elsewhere, asked again): no dialog
        }
        throw error;
      }),
      trans
    );
  };
  // A new prompt's field takes the focus only when the person is in the sidebar (or
  // nowhere): never from a notebook cell or another panel they are typing in.
  const takeFocus = (): boolean => {
    const active = document.activeElement;
    if (!props.visible() || !root.current) {
      return false;
    }
    return (
      active === null ||
      active === document.body ||
      root.current.contains(active)
    );
  };
  const { mine, more } = arrange(
    model.clusters,
    cluster => rowState(cluster, model.connectionFor(cluster)),
    prefs
  );
  const rows = (clusters: ICluster[]): JSX.Element[] =>
    clusters.map(cluster => (
      <Row
        key={cluster.name}
        model={model}
        cluster={cluster}
        pinned={prefs.isPinned(cluster.name)}
        onPin={() => prefs.togglePin(cluster.name)}
        submitted={submitted}
        onAnswer={answer}
        takeFocus={takeFocus}
        editing={editing === cluster.name}
        onEdit={() => {
          setAdding(false);
          setEditing(editing === cluster.name ? null : cluster.name);
        }}
        onEditClosed={() => {
          setEditing(null);
          setFocusTarget(editButtonId(cluster.name));
        }}
        trans={trans}
      />
    ));
  const shown = more.filter(cluster => matches(cluster, filter));
  const filterBox = (
    <input
      type="search"
      className="jp-mod-styled jp-hy2fa-filter"
      placeholder={trans.__('Filter clusters')}
      aria-label={trans.__('Filter clusters')}
      value={filter}
      onChange={event => setFilter(event.target.value)}
      onKeyDown={event => {
        if (event.key === 'Escape' && filter) {
          event.stopPropagation();
          setFilter('');
        }
      }}
    />
  );
  const nothing =
    shown.length === 0 && more.length > 0 ? (
      <div className="jp-hy2fa-empty" role="status">
        {trans.__('No cluster matches “%1”.', filter.trim())}
      </div>
    ) : null;
  return (
    <div className="jp-hy2fa-panel" ref={root}>
      <header className="jp-hy2fa-header">
        <h2>{trans.__('2FA connections')}</h2>
        {props.checkSetup && (
          <button
            type="button"
            className="jp-hy2fa-icon-button jp-hy2fa-check-setup"
            title={trans.__('Check my setup')}
            aria-label={trans.__('Check my setup')}
            onClick={props.checkSetup}
          >
            <checkSetupIcon.react tag="span" />
          </button>
        )}
        <button
          className="jp-hy2fa-icon-button"
          title={trans.__('Refresh')}
          aria-label={trans.__('Refresh')}
          onClick={() => act(model.refresh(), trans)}
        >
          <refreshIcon.react tag="span" />
        </button>
      </header>
      <Banner model={model} trans={trans} />
      <Limits model={model} trans={trans} />
      <AsksSection model={model} trans={trans} />
      <MastersSection
        model={model}
        disconnect={connection => act(model.disconnect(connection.id), trans)}
        trans={trans}
      />
      {mine.length > 0 ? (
        <>
          <section
            className="jp-hy2fa-section jp-hy2fa-mine"
            aria-labelledby="jp-hy2fa-mine-title"
          >
            <h3 className="jp-hy2fa-section-title" id="jp-hy2fa-mine-title">
              {trans.__('Your clusters')}
            </h3>
            <ul className="jp-hy2fa-rows">{rows(mine)}</ul>
          </section>
          {more.length > 0 && (
            <section className="jp-hy2fa-section jp-hy2fa-more">
              <h3 className="jp-hy2fa-section-title">
                <button
                  type="button"
                  className="jp-hy2fa-more-toggle"
                  aria-expanded={prefs.moreExpanded}
                  aria-controls="jp-hy2fa-more-body"
                  onClick={() => prefs.setMoreExpanded(!prefs.moreExpanded)}
                >
                  {prefs.moreExpanded ? (
                    <caretDownIcon.react tag="span" />
                  ) : (
                    <caretRightIcon.react tag="span" />
                  )}
                  {trans.__('More clusters (%1)', more.length)}
                </button>
              </h3>
              {prefs.moreExpanded && (
                <div id="jp-hy2fa-more-body">
                  {filterBox}
                  {nothing}
                  <ul className="jp-hy2fa-rows">{rows(shown)}</ul>
                </div>
              )}
            </section>
          )}
        </>
      ) : (
        <section
          className="jp-hy2fa-section jp-hy2fa-all"
          aria-labelledby="jp-hy2fa-all-title"
        >
          <h3 className="jp-hy2fa-section-title" id="jp-hy2fa-all-title">
            {trans.__('Clusters')}
          </h3>
          {filterBox}
          <div className="jp-hy2fa-hint">
            {trans.__(
              'Connect to one, or pin it: the ones you use stay at the top.'
            )}
          </div>
          {nothing}
          <ul className="jp-hy2fa-rows">{rows(shown)}</ul>
        </section>
      )}
      <div className="jp-hy2fa-add">
        {adding ? (
          <AddClusterForm
            model={model}
            onClose={added => {
              setAdding(false);
              setFocusTarget(
                added ? connectButtonId(added.name) : ADD_BUTTON_ID
              );
            }}
            trans={trans}
          />
        ) : (
          <button
            type="button"
            id={ADD_BUTTON_ID}
            className="jp-mod-styled jp-hy2fa-add-button jp-hy2fa-form-button"
            disabled={model.serverStatus === 'missing'}
            onClick={() => {
              setEditing(null);
              setAdding(true);
            }}
          >
            <addIcon.react tag="span" className="jp-hy2fa-add-icon" />
            {trans.__('Add a cluster')}
          </button>
        )}
      </div>
    </div>
  );
}

/** The id of "Add a cluster" (focus goes back to it when its form closes). */
const ADD_BUTTON_ID = 'jp-hy2fa-add-cluster';

/** The id of a row's Connect button (a cluster just added takes the focus there). */
function connectButtonId(cluster: string): string {
  return `jp-hy2fa-connect-${cluster}`;
}

interface IRowProps {
  model: IHy2faModel;
  cluster: ICluster;
  pinned: boolean;
  onPin: () => void;
  submitted: Record<string, number>;
  onAnswer: (key: string, response: string, promptId: number) => void;
  takeFocus: () => boolean;
  /** Whether its settings form is open. */
  editing: boolean;
  /** Open or close its settings form. */
  onEdit: () => void;
  /** Its settings form closed (saved or not). */
  onEditClosed: () => void;
  trans: TranslationBundle;
}

function Row(props: IRowProps): JSX.Element {
  const { model, cluster, trans } = props;
  const connection = model.connectionFor(cluster);
  const state = rowState(cluster, connection);
  // The row's connection by its id (a master some ssh made may share its name); with none
  // yet, the cluster's name (a master this server never saw is stopped by it).
  const key = connection?.id ?? cluster.name;
  const label = cluster.label || cluster.name;
  const where = [
    cluster.user ? `${cluster.user}@` : '',
    cluster.hostname ?? cluster.host,
    cluster.port && cluster.port !== 22 ? `:${cluster.port}` : ''
  ].join('');
  const pending = PENDING_STATES.includes(state);
  const persist = persistWords(connection?.persist ?? cluster.persist, trans);
  const labelId = `jp-hy2fa-label-${cluster.name}`;
  const unsupported = model.unsupported !== null;
  const yours = yoursWords(cluster, trans);
  const formId = `jp-hy2fa-edit-${cluster.name}-form`;
  // The certificate the files hold (fresh after a renewal), else the login's.
  const certificate = cluster.certificate ?? connection?.certificate ?? null;
  return (
    <li
      className="jp-hy2fa-row"
      data-hy2fa-cluster={cluster.name}
      data-state={state}
      data-source={cluster.source}
      data-mine={(cluster.mine ?? []).join(' ') || undefined}
      data-pinned={props.pinned ? 'true' : undefined}
      aria-labelledby={labelId}
    >
      <div className="jp-hy2fa-row-head">
        <span
          className="jp-hy2fa-label"
          id={labelId}
          title={cluster.asks ?? ''}
        >
          {label}
        </span>
        <span className="jp-hy2fa-row-tools">
          <button
            type="button"
            id={editButtonId(cluster.name)}
            className={`jp-hy2fa-icon-button jp-hy2fa-edit-button${props.editing ? ' jp-mod-active' : ''}`}
            aria-expanded={props.editing}
            aria-controls={props.editing ? formId : undefined}
            aria-label={trans.__('Your settings for %1', label)}
            title={trans.__('Your settings: user name, time kept open, label')}
            onClick={props.onEdit}
          >
            <editIcon.react tag="span" />
          </button>
          <button
            type="button"
            className={`jp-hy2fa-icon-button jp-hy2fa-pin${props.pinned ? ' jp-mod-active' : ''}`}
            aria-pressed={props.pinned}
            aria-label={trans.__('Pin %1', label)}
            title={
              props.pinned
                ? trans.__('Unpin: no longer keep it at the top')
                : trans.__('Pin: keep it at the top')
            }
            onClick={props.onPin}
          >
            <pinIcon.react tag="span" />
          </button>
          <span className={`jp-hy2fa-state jp-hy2fa-state-${state}`}>
            {state === 'verifying' && isPush(connection?.verifying?.choice)
              ? trans.__('On your phone')
              : stateWord(state, trans)}
          </span>
        </span>
      </div>
      <div className="jp-hy2fa-where" title={connection?.control_path ?? ''}>
        {where}
      </div>
      {certificate && (
        <CertificateLine
          certificate={certificate}
          state={state}
          now={Date.now()}
          trans={trans}
        />
      )}
      {!certificate && cluster.certificate_from && (
        <NoCertificateLine from={cluster.certificate_from} trans={trans} />
      )}
      {yours && <div className="jp-hy2fa-yours">{yours}</div>}
      {props.editing && (
        <EditForm
          cluster={cluster}
          model={model}
          onClose={props.onEditClosed}
          trans={trans}
        />
      )}
      {state === 'connected' && (
        <div className="jp-hy2fa-since">
          {connection?.since
            ? trans.__('Connected for %1', duration(connection.since, trans))
            : trans.__('Connected')}
          {persist ? ` · ${trans.__('stays %1 when idle', persist)}` : ''}
        </div>
      )}
      {cluster.error && (
        <div className="jp-hy2fa-error">{cluster.error.message}</div>
      )}
      <Progress connection={connection} label={label} trans={trans} />
      {state === 'prompting' && connection && (
        <PromptForm
          connection={connection}
          submitted={props.submitted[key]}
          onAnswer={(response, promptId) =>
            props.onAnswer(key, response, promptId)
          }
          onCancel={() => act(model.disconnect(key), trans)}
          takeFocus={props.takeFocus}
          trans={trans}
        />
      )}
      {state === 'unresponsive' && (
        <div className="jp-hy2fa-error" role="alert">
          {connection?.message || cluster.message}
        </div>
      )}
      {state === 'failed' && connection && (
        <div className="jp-hy2fa-error" role="alert">
          {failureWords(connection, trans, cluster)}
        </div>
      )}
      {state === 'disconnected' &&
        connection?.message &&
        connection.message !== 'Disconnected' && (
          <div className="jp-hy2fa-gone">{connection.message}</div>
        )}
      <div className="jp-hy2fa-actions">
        {pending ? (
          <button
            className="jp-mod-styled jp-mod-reject"
            data-action="cancel"
            aria-label={trans.__('Cancel the login to %1', label)}
            onClick={() => act(model.disconnect(key), trans)}
          >
            {trans.__('Cancel')}
          </button>
        ) : state === 'connected' ? (
          <button
            className="jp-mod-styled"
            data-action="disconnect"
            aria-label={trans.__('Disconnect %1', label)}
            onClick={() => act(model.disconnect(key), trans)}
          >
            {trans.__('Disconnect')}
          </button>
        ) : (
          <ConnectButton
            id={connectButtonId(cluster.name)}
            state={state}
            label={label}
            disabled={model.serverStatus === 'missing' || unsupported}
            describedBy={unsupported ? UNSUPPORTED_ID : undefined}
            onClick={() => act(connectAsking(model, cluster, trans), trans)}
            trans={trans}
          />
        )}
      </div>
    </li>
  );
}

/** Connect, or Retry / Reconnect / Check again: its name starts with the word it shows. */
function ConnectButton(props: {
  id: string;
  state: ConnectionState;
  label: string;
  disabled: boolean;
  describedBy?: string;
  onClick: () => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { state, label, trans } = props;
  const [text, name] =
    state === 'failed'
      ? [trans.__('Retry'), trans.__('Retry %1', label)]
      : state === 'disconnected'
        ? [trans.__('Reconnect'), trans.__('Reconnect to %1', label)]
        : state === 'unresponsive'
          ? [trans.__('Check again'), trans.__('Check again: %1', label)]
          : [trans.__('Connect'), trans.__('Connect to %1', label)];
  return (
    <button
      id={props.id}
      className="jp-mod-styled jp-mod-accept"
      data-action="connect"
      aria-label={name}
      aria-describedby={props.describedBy}
      disabled={props.disabled}
      onClick={props.onClick}
    >
      {text}
    </button>
  );
}
