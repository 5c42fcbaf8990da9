import type { TranslationBundle } from '@jupyterlab/translation';
import React, { useEffect, useState } from 'react';

import { DeviceLink, deviceOf } from './certificate';
import { IConnection } from './tokens';
import {
  progressSince,
  progressWords,
  secondsSince,
  secondsWords
} from './words';

/** The time now, again every `ms` while `active`: a component that ticks. */
export function useNow(active: boolean, ms = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) {
      return;
    }
    setNow(Date.now());
    const timer = window.setInterval(() => setNow(Date.now()), ms);
    return () => window.clearInterval(timer);
  }, [active, ms]);
  return now;
}

/**
 * Seconds since a time, ticking once a second. A timer (its role): screen readers read
 * it when asked and do not announce each tick.
 */
export function Elapsed(props: {
  since: string | null;
  trans: TranslationBundle;
}): JSX.Element | null {
  const now = useNow(props.since !== null);
  const seconds = secondsSince(props.since, now);
  if (seconds === null) {
    return null;
  }
  const words = secondsWords(seconds, props.trans);
  return (
    <span
      className="jp-hy2fa-elapsed"
      role="timer"
      data-seconds={seconds}
      aria-label={props.trans.__('%1 elapsed', words)}
    >
      {words}
    </span>
  );
}

/** What a row or dialog says of a connection's state, for the live region. */
export function liveWords(
  connection: IConnection | undefined,
  label: string,
  trans: TranslationBundle
): string {
  switch (connection?.state) {
    case 'starting':
    case 'verifying':
      return progressWords(connection, trans);
    case 'prompting':
      return trans.__('%1 is waiting for your answer', label);
    case 'connected':
      return trans.__('Connected to %1', label);
    case 'disconnected':
      return trans.__('%1 disconnected', label);
    default: // failed: its alert says why
      return '';
  }
}

/**
 * A connection's progress: "Connecting to saga.sigma2.no…" while ssh starts, "Approve
 * the request on your phone" after a Duo push, "Checking…" after a code, with the seconds
 * since (ticking), and every line ssh printed since the answer, verbatim, as they come.
 *
 * Render it whatever the state: its words are a polite live region that must be on the
 * page before they change to be announced. Outside a login under way they are only for
 * screen readers ("Connected to Saga"); the seconds tick outside the region (a timer,
 * read when asked, never announced each second); the lines are a log.
 */
export function Progress(props: {
  connection: IConnection | undefined;
  label: string;
  trans: TranslationBundle;
}): JSX.Element {
  const { connection, trans } = props;
  const state = connection?.state;
  const working = state === 'starting' || state === 'verifying';
  const lines =
    state === 'verifying' ? (connection?.verifying?.lines ?? []) : [];
  const choice =
    state === 'verifying' ? (connection?.verifying?.choice ?? null) : null;
  const device = deviceOf(connection);
  return (
    <div
      className={`jp-hy2fa-progress${working ? '' : ' jp-mod-quiet'}`}
      data-phase={state ?? 'idle'}
      data-choice={choice ?? undefined}
    >
      <div className="jp-hy2fa-progress-head">
        <span
          className={`jp-hy2fa-progress-text${working ? '' : ' jp-hy2fa-sr-only'}`}
          aria-live="polite"
        >
          {liveWords(connection, props.label, trans)}
        </span>
        {working && connection && (
          <Elapsed since={progressSince(connection)} trans={trans} />
        )}
      </div>
      {device && <DeviceLink device={device} trans={trans} />}
      {choice && (
        <div className="jp-hy2fa-choice">
          {trans.__('You chose %1', choice)}
        </div>
      )}
      {state === 'verifying' && (
        <ol
          className="jp-hy2fa-lines"
          role="log"
          aria-label={trans.__('What ssh says')}
        >
          {lines.map((line, index) => (
            <li key={index}>
              <samp>{line}</samp>
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}
