import { lockIcon, ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import React from 'react';

import { Hy2faModel } from './model';

/** A lock and the number of live connections; a click opens the sidebar. */
export class Hy2faStatus extends ReactWidget {
  constructor(
    private readonly model: Hy2faModel,
    private readonly open: () => void
  ) {
    super();
    this.addClass('jp-hy2fa-status');
    this.node.title = '2FA connections';
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => (
          <span
            className="jp-hy2fa-status-item"
            data-live={this.model.liveCount}
            onClick={() => this.open()}
          >
            <lockIcon.react tag="span" className="jp-hy2fa-status-icon" />
            <span className="jp-hy2fa-status-count">
              {this.model.liveCount}
            </span>
          </span>
        )}
      </UseSignal>
    );
  }
}
