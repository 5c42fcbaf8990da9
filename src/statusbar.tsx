import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { lockIcon, ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import React from 'react';

import { Hy2faModel } from './model';

/**
 * A lock and the number of live connections, and how many questions of kernels' ssh wait
 * for an answer; a click opens the sidebar.
 */
export class Hy2faStatus extends ReactWidget {
  constructor(
    private readonly model: Hy2faModel,
    private readonly open: () => void,
    private readonly trans: TranslationBundle = nullTranslator.load('hy2fa_lab')
  ) {
    super();
    this.addClass('jp-hy2fa-status');
    this.node.title = trans.__('2FA connections');
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => {
          const asks = this.model.asks.length;
          return (
            <span
              className="jp-hy2fa-status-item"
              data-live={this.model.liveCount}
              data-asks={asks}
              onClick={() => this.open()}
            >
              <lockIcon.react tag="span" className="jp-hy2fa-status-icon" />
              <span className="jp-hy2fa-status-count">
                {this.model.liveCount}
              </span>
              {asks > 0 && (
                <span
                  className="jp-hy2fa-status-asks"
                  role="status"
                  aria-label={this.trans._n(
                    '%1 question from ssh waiting',
                    '%1 questions from ssh waiting',
                    asks
                  )}
                  title={this.trans._n(
                    '%1 question from ssh waiting',
                    '%1 questions from ssh waiting',
                    asks
                  )}
                >
                  ?{asks}
                </span>
              )}
            </span>
          );
        }}
      </UseSignal>
    );
  }
}
