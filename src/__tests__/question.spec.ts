import React from 'react';

import { AsksSection } from '../asks';
import { PromptForm, Question } from '../prompt';
import type { IAsk, IConnection, IHy2faModel, IPrompt } from '../tokens';
import { hostKeyAnswers, menuTitle, questionHost } from '../words';
import { trans } from './helpers';

// asks.tsx shows a failure with apputils' dialog, which does not load outside a browser.
jest.mock('@jupyterlab/apputils', () => ({ showErrorMessage: jest.fn() }), {
  virtual: true
});

// No @types for react-dom here: the one function these tests use.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { renderToStaticMarkup } = require('react-dom/server') as {
  renderToStaticMarkup: (element: React.ReactElement) => string;
};

const FINGERPRINT = 'SHA256:Pn0Tq5Lm7VgA0lC5rPzJ3vZ0cYc0b7cR4l4d6V9mFkQ';
const HOSTKEY_TEXT =
  "The authenticity of host '[127.0.0.1]:2222 ([127.0.0.1]:2222)' can't be established.\n" +
  `ED25519 key fingerprint is ${FINGERPRINT}.\n` +
  'This key is not known by any other names.\n' +
  'Are you sure you want to continue connecting (yes/no/[fingerprint])? ';
const DUO_TEXT =
  '(duouser@127.0.0.1) Duo two-factor login for duouser\n\n' +
  'Enter a passcode or select one of the following options:\n\n' +
  ' 1. Duo Push to XXX-XXX-1234\n\n' +
  'Passcode or option (1-1): ';

/** A connection's prompt as the server sends it. */
const prompt = (extra: Partial<IPrompt> = {}): IPrompt => ({
  id: 7,
  kind: 'hostkey',
  text: HOSTKEY_TEXT,
  options: ['yes', 'no'], // what the server gives a host key
  secret: false,
  expires: '2030-01-01T00:01:00Z',
  host: null,
  ...extra
});

const connection = (p: IPrompt): IConnection =>
  ({
    id: 'c-1',
    name: 'newhost',
    cluster: 'newhost',
    host: '127.0.0.1',
    user: 'ola',
    port: 2222,
    state: 'prompting',
    prompt: p,
    verifying: null,
    reason: null,
    message: '',
    control_path: '/tmp/cm-newhost',
    master_pid: null,
    since: null,
    persist: '3600s',
    updated: '2030-01-01T00:00:00Z',
    version: 3
  }) as IConnection;

/** A kernel's ssh asking the same, through the askpass bridge. */
const ask = (p: IPrompt): IAsk => ({
  id: '1-a',
  prompt: { kind: p.kind, text: p.text, options: p.options, secret: p.secret },
  host: '[127.0.0.1]:2222 ([127.0.0.1]:2222)',
  command: ['ssh', 'fx', 'echo', 'ok'],
  origin: { pid: 4242, kernel_id: 'k-1', notebook: 'Analysis.ipynb' },
  since: 1000
});

/** The parts of a model the "Questions from ssh" section uses. */
const asksModel = (asks: IAsk[]): IHy2faModel =>
  ({
    asks,
    answerAsk: async () => undefined,
    cancelAsk: async () => undefined
  }) as unknown as IHy2faModel;

/** A connection's question, as a sidebar row shows it. */
function fromConnection(
  p: IPrompt,
  extra: { inDialog?: boolean } = {}
): string {
  return renderToStaticMarkup(
    React.createElement(PromptForm, {
      connection: connection(p),
      onAnswer: () => undefined,
      onCancel: () => undefined,
      trans,
      ...extra
    })
  );
}

/** A kernel's ssh asking the same, as "Questions from ssh" shows it. */
function fromAsk(p: IPrompt): string {
  return renderToStaticMarkup(
    React.createElement(AsksSection, {
      model: asksModel([ask(p)]),
      trans
    })
  );
}

/** The host-key buttons: [data-action, label, class, title], in order. */
function hostKeyButtons(html: string): string[][] {
  const pattern = /<button([^>]*data-action="(?:trust|reject)"[^>]*)>([^<]*)</g;
  const found: string[][] = [];
  for (let match = pattern.exec(html); match; match = pattern.exec(html)) {
    found.push([match[1], match[2]]);
  }
  return found.map(([attributes, label]) => [
    /data-action="([^"]*)"/.exec(attributes)![1],
    label,
    /class="([^"]*)"/.exec(attributes)![1],
    /title="([^"]*)"/.exec(attributes)![1]
  ]);
}

/** The markup inside the question's <details> (what is folded away), if any. */
function folded(html: string): string {
  return /<details[^>]*>([\s\S]*?)<\/details>/.exec(html)?.[1] ?? '';
}

describe('one question, from a connection or from a kernel’s ssh', () => {
  it('shows a host key’s fingerprint, never folded, from either source', () => {
    for (const html of [fromConnection(prompt()), fromAsk(prompt())]) {
      expect(html).toContain(
        `<strong class="jp-hy2fa-fingerprint">${FINGERPRINT}</strong>`
      );
      expect(html).not.toContain('<details');
      expect(folded(html)).not.toContain(FINGERPRINT);
      expect(html).toContain('Are you sure you want to continue connecting');
      expect(html).not.toContain('<input'); // no field for a host key
      expect(html).toContain('data-prompt-kind="hostkey"');
    }
  });

  it('answers a host key with the same two buttons from either source', () => {
    const expected = [
      [
        'trust',
        'Trust',
        'jp-mod-styled jp-mod-accept',
        'Trust this host key and connect'
      ],
      [
        'reject',
        'Reject',
        'jp-mod-styled jp-mod-warn',
        'Do not trust this host key: ssh stops'
      ]
    ];
    expect(hostKeyButtons(fromConnection(prompt()))).toEqual(expected);
    expect(hostKeyButtons(fromAsk(prompt()))).toEqual(expected);
    // The dialogs' footers take the same words.
    expect(hostKeyAnswers(trans).map(a => [a.action, a.label])).toEqual([
      ['trust', 'Trust'],
      ['reject', 'Reject']
    ]);
    expect(hostKeyAnswers(trans).map(a => a.response)).toEqual(['yes', 'no']);
  });

  it('says which host a question is for, from either source', () => {
    const hostLine = (html: string): string | undefined =>
      /class="jp-hy2fa-prompt-host"[^>]*>([^<]*)</.exec(html)?.[1];
    expect(hostLine(fromConnection(prompt()))).toBe('for [127.0.0.1]:2222');
    expect(hostLine(fromAsk(prompt()))).toBe('for [127.0.0.1]:2222');
    const code = prompt({
      kind: 'otp',
      text: '(ola@saga.sigma2.no) Verification code: ',
      options: [],
      secret: true,
      host: 'ola@saga.sigma2.no'
    });
    expect(hostLine(fromConnection(code))).toBe('for ola@saga.sigma2.no');
    expect(hostLine(fromAsk(code))).toBe('for ola@saga.sigma2.no'); // from ssh's prefix
  });

  it('in a dialog leaves the answers to its footer but shows the fingerprint', () => {
    const html = fromConnection(prompt(), { inDialog: true });
    expect(html).toContain(
      `<strong class="jp-hy2fa-fingerprint">${FINGERPRINT}</strong>`
    );
    expect(hostKeyButtons(html)).toEqual([]);
  });

  it('makes Duo’s options buttons beside a passcode field, from either source', () => {
    const duo = prompt({
      kind: 'duo',
      text: DUO_TEXT,
      options: ['Duo Push to XXX-XXX-1234'],
      secret: true,
      host: 'duouser@127.0.0.1'
    });
    for (const html of [fromConnection(duo), fromAsk(duo)]) {
      expect(html).toMatch(
        /<button type="button" class="[^"]*jp-hy2fa-option"[^>]*data-option="1">Duo Push to XXX-XXX-1234<\/button>/
      );
      expect(html).toContain('aria-label="Passcode"');
      expect(html).toContain('type="password"');
      expect(html).toContain(
        '<div class="jp-hy2fa-prompt-title">Duo two-factor login for duouser</div>'
      );
      expect(folded(html)).toContain('Passcode or option (1-1)'); // the menu's own words
    }
  });

  it('names the field by ssh’s words; each source says what the browser may fill in', () => {
    const code = prompt({
      kind: 'otp',
      text: '(ola@saga) Verification code: ',
      options: [],
      secret: true
    });
    const row = fromConnection(code);
    const item = fromAsk(code);
    for (const html of [row, item]) {
      expect(html).toContain('type="password"');
      expect(html).toContain('aria-label="(ola@saga) Verification code:"');
      expect(html).toContain('inputMode="numeric"');
    }
    expect(row).toContain('autoComplete="one-time-code"');
    expect(item).toContain('autoComplete="off"');
  });

  it('shows words instead of the field while an answer is on its way, and the time left', () => {
    const code = prompt({ kind: 'otp', text: 'Code: ', options: [] });
    const html = renderToStaticMarkup(
      React.createElement(Question, {
        prompt: code,
        questionId: code.id,
        busy: 'Checking…',
        onAnswer: () => undefined,
        autoComplete: 'off',
        trans
      })
    );
    expect(html).toContain('<div class="jp-hy2fa-checking">Checking…</div>');
    expect(html).not.toContain('<input');
    expect(html).not.toContain('role="timer"');
    const waiting = fromConnection(code);
    expect(waiting).toMatch(/role="timer"[^>]*>Waiting for your answer: /);
    expect(fromAsk(code)).not.toContain('role="timer"'); // an ask has no deadline to show
  });

  it('shows who asks for a kernel’s ssh, and a wrong answer’s message for a login', () => {
    const item = fromAsk(prompt());
    expect(item).toContain('from Analysis.ipynb');
    expect(item).toContain('ssh fx echo ok');
    const wrong = renderToStaticMarkup(
      React.createElement(PromptForm, {
        connection: {
          ...connection(prompt()),
          message: 'Wrong code — try again'
        },
        onAnswer: () => undefined,
        trans
      })
    );
    expect(wrong).toContain(
      '<div class="jp-hy2fa-message" role="alert">Wrong code — try again</div>'
    );
  });
});

describe('question words', () => {
  it('finds the host a question is for in ssh’s own words', () => {
    expect(questionHost({ kind: 'hostkey', text: HOSTKEY_TEXT })).toBe(
      '[127.0.0.1]:2222'
    );
    expect(
      questionHost({
        kind: 'hostkey',
        text: "The authenticity of host 'saga (10.1.2.3)' can't be established."
      })
    ).toBe('saga (10.1.2.3)');
    expect(
      questionHost({
        kind: 'otp',
        text: '(hopper@bastion) Code: \n(ola@saga) Verification code: '
      })
    ).toBe('ola@saga');
    expect(questionHost({ kind: 'otp', text: 'Password: ' })).toBeNull();
    expect(
      questionHost({ kind: 'otp', text: '(a@b) Code: ', host: 'ola@saga' })
    ).toBe('ola@saga'); // the server's word first
  });

  it('titles a menu without OpenSSH’s prefix, with or without the host', () => {
    expect(menuTitle(DUO_TEXT, 'duouser@127.0.0.1')).toBe(
      'Duo two-factor login for duouser'
    );
    expect(menuTitle(DUO_TEXT)).toBe('Duo two-factor login for duouser');
  });
});
