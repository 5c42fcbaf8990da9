import { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget, ReactWidget } from '@jupyterlab/apputils';
import type { TranslationBundle } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';
import React, { useEffect, useRef } from 'react';

import type { IDoctorCheck, IDoctorReport } from './api';
import type { ICluster } from './tokens';

/** The command that opens "Check my setup" (`args.cluster`: the cluster to check). */
export const CHECK_SETUP_COMMAND = 'hy2fa:check-setup';

/** The DOM id of the view (one at a time). */
export const DOCTOR_ID = 'hy2fa-doctor';

/** A clipboard with a check mark: "Check my setup". */
export const checkSetupIcon = new LabIcon({
  name: 'hy2fa-lab:check-setup',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">' +
    '<path class="jp-icon3" fill="#616161" fill-rule="evenodd" d="M6 1h4a1 1 0 0 1 1 1h1.5A1.5 ' +
    '1.5 0 0 1 14 3.5v10a1.5 1.5 0 0 1-1.5 1.5h-9A1.5 1.5 0 0 1 2 13.5v-10A1.5 1.5 0 0 1 3.5 ' +
    '2H5a1 1 0 0 1 1-1Zm-2.5 2.5v10h9v-10H11V4H5v-.5Zm3.3 8.3L4.5 9.5l1-1 1.3 1.3 3.7-3.7 1 ' +
    '1Z"/></svg>'
});

/** What the view needs: the REST call, the clusters to pick from, the words. */
export interface IDoctorOptions {
  /** `GET hy2fa/doctor` (`null`: this machine only). */
  check: (cluster: string | null) => Promise<IDoctorReport>;
  /** The clusters the person can pick (the sidebar's). */
  clusters: () => readonly ICluster[];
  trans: TranslationBundle;
}

/** A check's title in the person's language (the server's `check` id). */
export function checkTitle(check: string, trans: TranslationBundle): string {
  switch (check) {
    case 'openssh':
      return trans.__('OpenSSH client');
    case 'askpass':
      return trans.__('Questions of ssh in notebooks (askpass bridge)');
    case 'cluster':
      return trans.__('Cluster');
    case 'control_path':
      return trans.__('Control path length');
    case 'socket_dir':
      return trans.__('Socket directory');
    case 'ssh_config:ControlMaster':
      return trans.__('ssh config: %1', 'ControlMaster');
    case 'ssh_config:ControlPath':
      return trans.__('ssh config: %1', 'ControlPath');
    case 'ssh_config:ControlPersist':
      return trans.__('ssh config: %1', 'ControlPersist');
    case 'host_key':
      return trans.__('Host key');
    case 'reachable':
      return trans.__('Answers on its port');
    default:
      if (check.startsWith('platform:')) {
        return trans.__('This machine: %1', check.slice('platform:'.length));
      }
      return check; // a check a newer server makes
  }
}

function statusWord(status: string, trans: TranslationBundle): string {
  switch (status) {
    case 'ok':
      return trans.__('OK');
    case 'problem':
      return trans.__('Problem');
    default:
      return trans.__('Info');
  }
}

const MARKS: Record<string, string> = { ok: '✓', problem: '!', info: 'i' };

/**
 * "Check my setup": what a login needs, checked by the server without logging in, one line
 * each with its mark (OK, Problem, Info) and what to do. Runs once when it opens, and again
 * with **Check**.
 */
export class DoctorView extends ReactWidget {
  constructor(private readonly options: IDoctorOptions) {
    super();
    this.addClass('jp-hy2fa-doctor');
  }

  /** The cluster checked next ('' : this machine only). */
  get cluster(): string {
    return this._cluster;
  }

  set cluster(value: string) {
    this._cluster = value;
    this.update();
  }

  /** Run the checks for `cluster` (default: the one picked); a later run wins. */
  async check(cluster: string = this._cluster): Promise<void> {
    this._cluster = cluster;
    const asked = ++this._asked;
    this._busy = true;
    this._error = null;
    this.update();
    try {
      const report = await this.options.check(cluster || null);
      if (asked === this._asked) {
        this._report = report;
      }
    } catch (error) {
      if (asked === this._asked) {
        this._report = null;
        this._error = (error as Error)?.message ?? String(error);
      }
    } finally {
      if (asked === this._asked) {
        this._busy = false;
        this.update();
      }
    }
  }

  /** Put the focus on the cluster picker. */
  focusPicker(): void {
    this.node.querySelector<HTMLSelectElement>('select')?.focus();
  }

  render(): JSX.Element {
    return (
      <DoctorPanel
        trans={this.options.trans}
        clusters={this.options.clusters()}
        cluster={this._cluster}
        report={this._report}
        error={this._error}
        busy={this._busy}
        onPick={value => {
          this.cluster = value;
        }}
        onCheck={() => void this.check()}
      />
    );
  }

  private _cluster = '';
  private _report: IDoctorReport | null = null;
  private _error: string | null = null;
  private _busy = false;
  private _asked = 0;
}

interface IPanelProps {
  trans: TranslationBundle;
  clusters: readonly ICluster[];
  cluster: string;
  report: IDoctorReport | null;
  error: string | null;
  busy: boolean;
  onPick: (cluster: string) => void;
  onCheck: () => void;
}

function DoctorPanel(props: IPanelProps): JSX.Element {
  const { trans, report, busy, error } = props;
  const picker = useRef<HTMLSelectElement>(null);
  useEffect(() => picker.current?.focus(), []); // where the keyboard starts
  const names = props.clusters.map(c => c.name);
  if (props.cluster && !names.includes(props.cluster)) {
    names.unshift(props.cluster); // asked for by name (the command's argument)
  }
  const label = (name: string): string => {
    const found = props.clusters.find(c => c.name === name);
    return found && found.label && found.label !== name
      ? `${found.label} (${name})`
      : name;
  };
  const problems = report?.checks.filter(c => c.status === 'problem') ?? [];
  // Problems first (what the person came for), then the rest in the server's order.
  const ordered = [
    ...problems,
    ...(report?.checks.filter(c => c.status !== 'problem') ?? [])
  ];
  let summary: string;
  if (busy) {
    summary = trans.__('Checking…');
  } else if (error !== null) {
    summary = trans.__('The check could not run: %1', error);
  } else if (report === null) {
    summary = '';
  } else if (problems.length === 0) {
    summary = trans.__('No problems found.');
  } else {
    summary = trans._n(
      '%1 problem found: see what to do below.',
      '%1 problems found: see what to do below.',
      problems.length
    );
  }
  return (
    <div className="jp-hy2fa-doctor-body">
      <h2 className="jp-hy2fa-doctor-title" id="jp-hy2fa-doctor-title">
        {trans.__('Check my setup')}
      </h2>
      <p className="jp-hy2fa-doctor-intro">
        {trans.__(
          'What a login needs, checked without logging in: nothing is asked and no code is sent. Pick a cluster to check it too.'
        )}
      </p>
      <form
        className="jp-hy2fa-doctor-form"
        onSubmit={event => {
          event.preventDefault();
          props.onCheck();
        }}
      >
        <label htmlFor="jp-hy2fa-doctor-cluster">{trans.__('Cluster')}</label>
        <select
          ref={picker}
          id="jp-hy2fa-doctor-cluster"
          className="jp-mod-styled"
          value={props.cluster}
          onChange={event => props.onPick(event.target.value)}
        >
          <option value="">{trans.__('None: this machine only')}</option>
          {names.map(name => (
            <option key={name} value={name}>
              {label(name)}
            </option>
          ))}
        </select>
        <button
          type="submit"
          className="jp-mod-styled jp-mod-accept jp-hy2fa-doctor-run"
          disabled={busy}
        >
          {busy ? trans.__('Checking…') : trans.__('Check')}
        </button>
      </form>
      <div
        className="jp-hy2fa-doctor-summary"
        role="status"
        aria-live="polite"
        data-problems={report && !busy ? problems.length : undefined}
      >
        {summary}
      </div>
      {report && (
        <section aria-labelledby="jp-hy2fa-doctor-results-title">
          <h3
            className="jp-hy2fa-doctor-results-title"
            id="jp-hy2fa-doctor-results-title"
          >
            {report.cluster
              ? trans.__('This machine and %1', report.cluster)
              : trans.__('This machine')}
          </h3>
          <ul className="jp-hy2fa-doctor-checks" aria-busy={busy}>
            {ordered.map((check, index) => (
              <CheckLine
                key={`${check.check}-${index}`}
                check={check}
                trans={trans}
              />
            ))}
          </ul>
        </section>
      )}
    </div>
  );
}

function CheckLine(props: {
  check: IDoctorCheck;
  trans: TranslationBundle;
}): JSX.Element {
  const { check, trans } = props;
  const status = ['ok', 'problem', 'info'].includes(check.status)
    ? check.status
    : 'info';
  return (
    <li
      className="jp-hy2fa-doctor-check"
      data-check={check.check}
      data-status={status}
    >
      <span className="jp-hy2fa-doctor-mark" aria-hidden="true">
        {MARKS[status]}
      </span>
      <div className="jp-hy2fa-doctor-text">
        <div className="jp-hy2fa-doctor-head">
          <span className="jp-hy2fa-doctor-status">
            {statusWord(status, trans)}
          </span>{' '}
          <span className="jp-hy2fa-doctor-name">
            {checkTitle(check.check, trans)}
          </span>
        </div>
        <p className="jp-hy2fa-doctor-detail">{check.detail}</p>
        {check.fix && (
          <p className="jp-hy2fa-doctor-fix">
            <strong>{trans.__('What to do:')}</strong> {check.fix}
          </p>
        )}
      </div>
    </li>
  );
}

let opened: MainAreaWidget<DoctorView> | null = null;

/**
 * Open "Check my setup" in the main area (or bring the open one forward) and run the
 * checks, for `cluster` when given, else for the cluster picked last.
 */
export function openDoctor(
  app: JupyterFrontEnd,
  options: IDoctorOptions,
  cluster?: string
): MainAreaWidget<DoctorView> {
  const { trans } = options;
  let widget = opened;
  const reopened = widget !== null && !widget.isDisposed;
  if (!widget || widget.isDisposed) {
    const content = new DoctorView(options);
    widget = new MainAreaWidget({ content });
    widget.id = DOCTOR_ID;
    widget.title.label = trans.__('Check my setup');
    widget.title.caption = trans.__('2FA connections: check my setup');
    widget.title.icon = checkSetupIcon;
    widget.title.closable = true;
    widget.disposed.connect(() => {
      if (opened === widget) {
        opened = null;
      }
    });
    opened = widget;
    app.shell.add(widget, 'main');
  }
  app.shell.activateById(widget.id);
  const view = widget.content;
  void view.check(cluster ?? view.cluster);
  if (reopened) {
    view.focusPicker();
  }
  return widget;
}
