import type { TranslationBundle } from '@jupyterlab/translation';
import { lockIcon, ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import React from 'react';

import { PENDING_STATES } from './model';
import { IHy2faModel } from './tokens';

/** The status bar item's state, for its look (`data-state`): the most urgent first. */
export type StatusState = 'waiting' | 'lost' | 'pending' | 'connected' | 'idle';

/**
 * A lock and the number of live connections; a mark for a login under way, for a
 * master lost without the person asking, and for questions of kernels' ssh waiting. A
 * click (or Enter) opens the sidebar.
 */
export class Hy2faStatus extends ReactWidget {
  constructor(
    private readonly model: IHy2faModel,
    private readonly open: () => void,
    private readonly trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-hy2fa-status');
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => this.renderItem()}
      </UseSignal>
    );
  }

  private renderItem(): JSX.Element {
    const { model, trans } = this;
    const live = model.liveCount;
    const asks = model.asks.length;
    const lost = model.lost.length;
    const prompting = model.prompting().length;
    const pending = model.connections.filter(c =>
      PENDING_STATES.includes(c.state)
    ).length;
    const state: StatusState =
      asks + prompting > 0
        ? 'waiting'
        : lost > 0
          ? 'lost'
          : pending > 0
            ? 'pending'
            : live > 0
              ? 'connected'
              : 'idle';
    const asksWords = trans._n(
      '%1 question from ssh waiting',
      '%1 questions from ssh waiting',
      asks
    );
    const lostWords = trans._n(
      '%1 connection lost',
      '%1 connections lost',
      lost
    );
    const pendingWords = trans._n(
      '%1 login under way',
      '%1 logins under way',
      pending
    );
    const summary = [
      trans.__('2FA connections'),
      trans._n('%1 connected', '%1 connected', live),
      ...(pending > 0 ? [pendingWords] : []),
      ...(lost > 0 ? [lostWords] : []),
      ...(asks > 0 ? [asksWords] : [])
    ].join(', ');
    return (
      <span
        className="jp-hy2fa-status-item"
        role="button"
        tabIndex={0}
        aria-label={summary}
        title={summary}
        data-live={live}
        data-asks={asks}
        data-lost={lost}
        data-pending={pending}
        data-state={state}
        onClick={() => this.open()}
        onKeyDown={event => {
          if (event.key === 'Enter' || event.key === ' ') {
            event.preventDefault();
            this.open();
          }
        }}
      >
        <lockIcon.react tag="span" className="jp-hy2fa-status-icon" />
        <span className="jp-hy2fa-status-count" aria-hidden="true">
          {live}
        </span>
        {pending > 0 && (
          <span className="jp-hy2fa-status-pending" aria-hidden="true">
            …
          </span>
        )}
        {lost > 0 && (
          <span
            className="jp-hy2fa-status-lost"
            aria-hidden="true"
            title={lostWords}
          >
            !{lost}
          </span>
        )}
        {asks > 0 && (
          <span
            className="jp-hy2fa-status-asks"
            aria-hidden="true"
            title={asksWords}
          >
            ?{asks}
          </span>
        )}
      </span>
    );
  }
}
