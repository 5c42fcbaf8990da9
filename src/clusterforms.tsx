import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import type { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import React, { useEffect, useRef, useState } from 'react';

import {
  FormErrors,
  FormField,
  formOf,
  IMineForm,
  isMine,
  ISshLine,
  mineChanges,
  needsUserName,
  refusal,
  splits,
  suggestName
} from './mine';
import { ICluster, IConnection, IHy2faModel, INewCluster } from './tokens';

/** A setting a person can have set, in words ("Your settings: user name, label"). */
export function fieldWords(field: string, trans: TranslationBundle): string {
  switch (field) {
    case 'host':
      return trans.__('host');
    case 'user':
      return trans.__('user name');
    case 'port':
      return trans.__('port');
    case 'persist':
      return trans.__('time kept open');
    case 'label':
      return trans.__('label');
    case 'ssh_options':
      return trans.__('ssh options');
    default:
      return field;
  }
}

/** What a row says of the person's own settings; null when it has none. */
export function yoursWords(
  cluster: ICluster,
  trans: TranslationBundle
): string | null {
  if (cluster.source === 'mine') {
    return trans.__('Added by you');
  }
  const mine = cluster.mine ?? [];
  if (mine.length === 0) {
    return null;
  }
  return trans.__(
    'Your settings: %1',
    mine.map(field => fieldWords(field, trans)).join(', ')
  );
}

/** The id of a row's edit button (focus goes back to it when its form closes). */
export function editButtonId(cluster: string): string {
  return `jp-hy2fa-edit-${cluster}`;
}

interface IFieldProps {
  id: string;
  label: string;
  value: string;
  onChange: (value: string) => void;
  error?: string;
  hint?: string;
  /** The person set it themselves (the form says so beside its label). */
  yours?: boolean;
  placeholder?: string;
  inputMode?: 'text' | 'numeric';
  inputRef?: React.RefObject<HTMLInputElement>;
  onPaste?: (event: React.ClipboardEvent<HTMLInputElement>) => void;
  onBlur?: () => void;
  trans: TranslationBundle;
}

/** One labelled field; what the server refused is said right under it (and read out). */
function Field(props: IFieldProps): JSX.Element {
  const { id, error, hint, trans } = props;
  const described = [
    error ? `${id}-error` : '',
    props.yours ? `${id}-yours` : '',
    hint ? `${id}-hint` : ''
  ]
    .filter(Boolean)
    .join(' ');
  return (
    <div className="jp-hy2fa-field" data-invalid={error ? 'true' : undefined}>
      <div className="jp-hy2fa-field-head">
        <label htmlFor={id}>{props.label}</label>
        {props.yours && (
          <span
            className="jp-hy2fa-yours-mark"
            id={`${id}-yours`}
            title={trans.__('You set this; empty it for the site’s value')}
          >
            {trans.__('yours')}
          </span>
        )}
      </div>
      <input
        id={id}
        ref={props.inputRef}
        className="jp-mod-styled jp-hy2fa-input"
        type="text"
        value={props.value}
        placeholder={props.placeholder}
        inputMode={props.inputMode}
        autoComplete="off"
        autoCapitalize="off"
        spellCheck={false}
        aria-invalid={error ? true : undefined}
        aria-describedby={described || undefined}
        onChange={event => props.onChange(event.target.value)}
        onPaste={props.onPaste}
        onBlur={props.onBlur}
      />
      {hint && (
        <div className="jp-hy2fa-field-hint" id={`${id}-hint`}>
          {hint}
        </div>
      )}
      {error && (
        <div className="jp-hy2fa-field-error" id={`${id}-error`} role="alert">
          {error}
        </div>
      )}
    </div>
  );
}

/** Focus the first field a refusal names (else the form's first field). */
function useFocusOnError(
  errors: FormErrors,
  ids: Partial<Record<FormField, string>>
): void {
  useEffect(() => {
    for (const [field, id] of Object.entries(ids)) {
      if (errors[field as FormField] && id) {
        document.getElementById(id)?.focus();
        return;
      }
    }
  }, [errors]);
}

const EDIT_FIELDS = ['user', 'port', 'persist', 'label'] as const;

export interface IEditFormProps {
  cluster: ICluster;
  model: IHy2faModel;
  /** Close the form (after a change, or without one). */
  onClose: () => void;
  trans: TranslationBundle;
}

/**
 * The person's own settings of one cluster, in its row: user name, time kept open and
 * label (and the port of a cluster of their own). Save sends what changed (a field emptied
 * that was theirs goes back to the site's); what the server refuses is said beside its
 * field and nothing is changed. "Reset to the site's values" forgets all of theirs;
 * "Also use it in terminals…" shows the ssh config block first and writes it only when
 * the person agrees. Escape closes it.
 */
export function EditForm(props: IEditFormProps): JSX.Element {
  const { cluster, model, trans } = props;
  const own = cluster.source === 'mine';
  const fields = EDIT_FIELDS.filter(field => own || field !== 'port');
  const [form, setForm] = useState<IMineForm>(() => formOf(cluster));
  const [errors, setErrors] = useState<FormErrors>({});
  const [busy, setBusy] = useState(false);
  const first = useRef<HTMLInputElement>(null);
  const base = `jp-hy2fa-edit-${cluster.name}`;
  const ids: Partial<Record<FormField, string>> = {};
  for (const field of fields) {
    ids[field] = `${base}-${field}`;
  }
  useFocusOnError(errors, ids);
  useEffect(() => {
    first.current?.focus();
    first.current?.select();
  }, []);
  const changes = mineChanges(cluster, form, fields);
  const dirty = Object.keys(changes).length > 0;
  const label = cluster.label || cluster.name;
  const mine = (cluster.mine ?? []).length > 0;
  const set =
    (field: keyof IMineForm) =>
    (value: string): void => {
      setForm(before => ({ ...before, [field]: value }));
      setErrors(before => {
        const rest = { ...before };
        delete rest[field];
        delete rest.form;
        return rest;
      });
    };
  const run = async (work: () => Promise<unknown>): Promise<void> => {
    setBusy(true);
    setErrors({});
    try {
      await work();
    } catch (error) {
      setErrors(refusal(error));
      setBusy(false);
      return;
    }
    props.onClose();
  };
  const save = (event: React.FormEvent): void => {
    event.preventDefault();
    if (busy) {
      return;
    }
    if (!dirty) {
      props.onClose();
      return;
    }
    void run(() => model.setMine(cluster.name, changes));
  };
  const reset = (): void => {
    void run(() => model.forgetMine(cluster.name));
  };
  const remove = async (): Promise<void> => {
    const answer = await showDialog({
      title: trans.__('Remove %1?', label),
      body: trans.__(
        'It leaves your clusters, in every open Lab. A master that runs now keeps running until it is disconnected.'
      ),
      buttons: [
        Dialog.cancelButton({ label: trans.__('Keep it') }),
        Dialog.warnButton({ label: trans.__('Remove') })
      ]
    });
    if (answer.button.accept) {
      await run(() => model.forgetMine(cluster.name));
    }
  };
  const terminals = (): void => {
    setErrors({});
    alsoInTerminals(model, cluster, trans).catch(error =>
      setErrors(refusal(error))
    );
  };
  return (
    <form
      className="jp-hy2fa-edit"
      id={`${base}-form`}
      aria-label={trans.__('Your settings for %1', label)}
      data-hy2fa-edit={cluster.name}
      onSubmit={save}
      onKeyDown={event => {
        if (event.key === 'Escape' && !event.defaultPrevented) {
          event.preventDefault();
          event.stopPropagation();
          props.onClose();
        }
      }}
    >
      <Field
        id={`${base}-user`}
        inputRef={first}
        label={trans.__('Your user name on %1', label)}
        value={form.user}
        onChange={set('user')}
        error={errors.user}
        yours={isMine(cluster, 'user')}
        trans={trans}
      />
      {own && (
        <Field
          id={`${base}-port`}
          label={trans.__('Port')}
          value={form.port}
          onChange={set('port')}
          error={errors.port}
          inputMode="numeric"
          placeholder="22"
          trans={trans}
        />
      )}
      <Field
        id={`${base}-persist`}
        label={trans.__('Keep the connection open when idle for')}
        value={form.persist}
        onChange={set('persist')}
        error={errors.persist}
        yours={isMine(cluster, 'persist')}
        placeholder={trans.__('1h, 30m, or yes')}
        hint={trans.__('A duration like 30m, 2h or 1h30m; yes: until stopped.')}
        trans={trans}
      />
      <Field
        id={`${base}-label`}
        label={trans.__('Label')}
        value={form.label}
        onChange={set('label')}
        error={errors.label}
        yours={isMine(cluster, 'label')}
        trans={trans}
      />
      <FormEnd
        error={errors.form}
        busy={busy}
        submit={trans.__('Save')}
        onCancel={props.onClose}
        trans={trans}
      />
      <div className="jp-hy2fa-edit-more">
        {mine && !own && (
          <button
            type="button"
            className="jp-mod-styled jp-hy2fa-form-button"
            data-action="reset"
            disabled={busy}
            title={trans.__(
              'Forget your settings for %1: the site’s values apply again',
              label
            )}
            onClick={reset}
          >
            {trans.__("Reset to the site's values")}
          </button>
        )}
        {own && (
          <button
            type="button"
            className="jp-mod-styled jp-mod-warn jp-hy2fa-form-button"
            data-action="remove"
            disabled={busy}
            onClick={() => void remove()}
          >
            {trans.__('Remove this cluster')}
          </button>
        )}
        <button
          type="button"
          className="jp-mod-styled jp-hy2fa-form-button"
          data-action="terminals"
          disabled={busy || dirty}
          aria-describedby={`${base}-terminals-hint`}
          onClick={terminals}
        >
          {trans.__('Also use it in terminals…')}
        </button>
        <div className="jp-hy2fa-field-hint" id={`${base}-terminals-hint`}>
          {dirty
            ? trans.__('Save your changes first.')
            : trans.__(
                'Plain ssh %1 in a terminal, rsync and other tools then log in as you and share this socket. You see what is written first.',
                cluster.name
              )}
        </div>
      </div>
    </form>
  );
}

/**
 * "Also use it in terminals": shows what would be written into the ssh config (the
 * managed `Host` block, and where), and writes it only when the person says so; takes a
 * block that is there out again, if they choose that.
 */
export async function alsoInTerminals(
  model: IHy2faModel,
  cluster: ICluster,
  trans: TranslationBundle
): Promise<void> {
  const preview = await model.sshConfigPreview(cluster.name);
  const label = cluster.label || cluster.name;
  const REMOVE = 'hy2fa-terminals-remove';
  const buttons = [Dialog.cancelButton({ label: trans.__('Cancel') })];
  if (preview.written) {
    buttons.push(
      Dialog.warnButton({
        label: trans.__('Take it out'),
        caption: trans.__(
          'Remove the block for %1 from %2',
          cluster.name,
          preview.path
        ),
        actions: [REMOVE]
      })
    );
  }
  buttons.push(Dialog.okButton({ label: trans.__('Write it') }));
  const result = await showDialog({
    title: trans.__('Also use %1 in terminals?', label),
    body: (
      <div className="jp-hy2fa-terminals" data-hy2fa-terminals={cluster.name}>
        <p>
          {trans.__(
            'This block goes into %1, so plain ssh %2 in a terminal, rsync and other tools that read your ssh config log in as you and share the socket of this login. A copy of the file as it was is kept.',
            preview.path,
            cluster.name
          )}
        </p>
        {preview.written && (
          <p className="jp-hy2fa-note">
            {trans.__(
              'A block for %1 is there already: it is replaced.',
              cluster.name
            )}
          </p>
        )}
        <pre
          className="jp-hy2fa-block"
          tabIndex={0}
          aria-label={trans.__('The block')}
        >
          {preview.block}
        </pre>
      </div>
    ),
    buttons,
    // The block takes the focus, to be read: Enter there writes nothing.
    focusNodeSelector: '.jp-hy2fa-block'
  });
  if (result.button.actions.includes(REMOVE)) {
    await model.removeSshConfig(cluster.name);
    Notification.info(
      trans.__('The block for %1 is out of %2.', cluster.name, preview.path),
      { autoClose: 5000 }
    );
    return;
  }
  if (!result.button.accept) {
    return; // nothing is written
  }
  const written = await model.writeSshConfig(cluster.name);
  Notification.success(
    trans.__(
      'ssh %1 in a terminal now logs in as you: the block is in %2.',
      cluster.name,
      written.path
    ),
    { autoClose: 8000 }
  );
  if (written.overridden.length > 0) {
    Notification.warning(
      trans.__(
        'ssh takes %1 for %2 from a line above the block in %3, not from the block: move that line below it, or remove it.',
        written.overridden.join(', '),
        cluster.name,
        written.path
      ),
      { autoClose: false }
    );
  }
}

export interface IAddFormProps {
  model: IHy2faModel;
  /** Close the form: with the new cluster's row, or null (cancelled). */
  onClose: (added: ICluster | null) => void;
  trans: TranslationBundle;
}

interface IAddForm {
  host: string;
  user: string;
  port: string;
  name: string;
}

/** What a pasted line was read as, in words (said to screen readers too). */
function understoodWords(line: ISshLine, trans: TranslationBundle): string {
  const parts = [
    line.user ? trans.__('user %1', line.user) : '',
    trans.__('host %1', line.host),
    line.port ? trans.__('port %1', line.port) : ''
  ].filter(Boolean);
  return trans.__('Read as %1.', parts.join(', '));
}

/**
 * "Add a cluster": its host (a pasted `user@host:port` or ssh command line is split into
 * the fields), user name, port and a name (suggested from the host). What the server
 * refuses is said beside its field, and nothing is added. Escape closes it.
 */
export function AddClusterForm(props: IAddFormProps): JSX.Element {
  const { model, trans } = props;
  const [form, setForm] = useState<IAddForm>({
    host: '',
    user: '',
    port: '',
    name: ''
  });
  const [named, setNamed] = useState(false);
  const [understood, setUnderstood] = useState('');
  const [errors, setErrors] = useState<FormErrors>({});
  const [busy, setBusy] = useState(false);
  const first = useRef<HTMLInputElement>(null);
  const base = 'jp-hy2fa-add';
  const ids: Partial<Record<FormField, string>> = {
    host: `${base}-host`,
    user: `${base}-user`,
    port: `${base}-port`,
    name: `${base}-name`
  };
  useFocusOnError(errors, ids);
  useEffect(() => first.current?.focus(), []);
  const clear = (...fields: FormField[]): void =>
    setErrors(before => {
      const rest = { ...before };
      for (const field of [...fields, 'form' as const]) {
        delete rest[field];
      }
      return rest;
    });
  /** The fields of a pasted line; the name too, unless the person typed one. */
  const take = (line: ISshLine, before: IAddForm): IAddForm => ({
    host: line.host,
    user: line.user ?? before.user,
    port: line.port !== undefined ? String(line.port) : before.port,
    name: named ? before.name : suggestName(line.host)
  });
  const split = (text: string): boolean => {
    const line = splits(text);
    if (!line) {
      return false;
    }
    setForm(before => take(line, before));
    setUnderstood(understoodWords(line, trans));
    clear('host', 'user', 'port', 'name');
    return true;
  };
  const onPaste = (event: React.ClipboardEvent<HTMLInputElement>): void => {
    const input = event.currentTarget;
    const pasted = event.clipboardData.getData('text');
    const start = input.selectionStart ?? input.value.length;
    const end = input.selectionEnd ?? start;
    const text = input.value.slice(0, start) + pasted + input.value.slice(end);
    if (split(text)) {
      event.preventDefault();
    }
  };
  const submit = async (event: React.FormEvent): Promise<void> => {
    event.preventDefault();
    if (busy) {
      return;
    }
    const line = splits(form.host);
    const values = line ? take(line, form) : form;
    if (line) {
      setForm(values);
      setUnderstood(understoodWords(line, trans));
    }
    const missing: FormErrors = {};
    if (!values.host.trim()) {
      missing.host = trans.__(
        'Type or paste its host: login.example.org, user@host:port or an ssh command.'
      );
    }
    if (!values.name.trim()) {
      missing.name = trans.__(
        'Give it a name: letters, digits, “.”, “_” and “-”.'
      );
    }
    if (Object.keys(missing).length > 0) {
      setErrors(missing);
      return;
    }
    const cluster: INewCluster = {
      name: values.name.trim(),
      host: values.host.trim()
    };
    if (values.user.trim()) {
      cluster.user = values.user.trim();
    }
    const port = values.port.trim();
    if (port) {
      cluster.port = /^\d+$/.test(port) ? Number(port) : port;
    }
    setBusy(true);
    setErrors({});
    let row: ICluster;
    try {
      row = await model.addCluster(cluster);
    } catch (error) {
      setErrors(refusal(error));
      setBusy(false);
      return;
    }
    props.onClose(row);
  };
  return (
    <form
      className="jp-hy2fa-add-form"
      aria-labelledby={`${base}-title`}
      onSubmit={event => void submit(event)}
      onKeyDown={event => {
        if (event.key === 'Escape' && !event.defaultPrevented) {
          event.preventDefault();
          event.stopPropagation();
          props.onClose(null);
        }
      }}
    >
      <h3 className="jp-hy2fa-section-title" id={`${base}-title`}>
        {trans.__('Add a cluster')}
      </h3>
      <Field
        id={ids.host!}
        inputRef={first}
        label={trans.__('Host')}
        value={form.host}
        onChange={value => {
          setForm(before => ({
            ...before,
            host: value,
            name: named ? before.name : suggestName(value)
          }));
          setUnderstood('');
          clear('host');
        }}
        onPaste={onPaste}
        onBlur={() => void split(form.host)}
        error={errors.host}
        placeholder={trans.__('login.example.org')}
        hint={trans.__(
          'Or paste user@host:port, or the ssh command you use (ssh -p 2222 user@host).'
        )}
        trans={trans}
      />
      <div className="jp-hy2fa-understood" role="status" aria-live="polite">
        {understood}
      </div>
      <Field
        id={ids.user!}
        label={trans.__('Your user name there')}
        value={form.user}
        onChange={value => {
          setForm(before => ({ ...before, user: value }));
          clear('user');
        }}
        error={errors.user}
        trans={trans}
      />
      <Field
        id={ids.port!}
        label={trans.__('Port')}
        value={form.port}
        onChange={value => {
          setForm(before => ({ ...before, port: value }));
          clear('port');
        }}
        error={errors.port}
        inputMode="numeric"
        placeholder="22"
        trans={trans}
      />
      <Field
        id={ids.name!}
        label={trans.__('Name')}
        value={form.name}
        onChange={value => {
          setNamed(value !== '');
          setForm(before => ({ ...before, name: value }));
          clear('name');
        }}
        error={errors.name}
        hint={trans.__('How the sidebar, ensure("name") and hy2fa name it.')}
        trans={trans}
      />
      <FormEnd
        error={errors.form}
        busy={busy}
        submit={trans.__('Add')}
        onCancel={() => props.onClose(null)}
        trans={trans}
      />
    </form>
  );
}

/** The end of a form: what the server refused that is no field's, then submit and Cancel. */
function FormEnd(props: {
  error?: string;
  busy: boolean;
  submit: string;
  onCancel: () => void;
  trans: TranslationBundle;
}): JSX.Element {
  return (
    <>
      {props.error && (
        <div className="jp-hy2fa-field-error" role="alert">
          {props.error}
        </div>
      )}
      <div className="jp-hy2fa-edit-buttons">
        <button
          type="submit"
          className="jp-mod-styled jp-mod-accept jp-hy2fa-form-button"
          disabled={props.busy}
        >
          {props.submit}
        </button>
        <button
          type="button"
          className="jp-mod-styled jp-mod-reject jp-hy2fa-form-button"
          onClick={props.onCancel}
        >
          {props.trans.__('Cancel')}
        </button>
      </div>
    </>
  );
}

/** The body of the first-connect question: the user name field, and what was refused. */
class UserNameBody extends ReactWidget {
  constructor(
    private readonly cluster: ICluster,
    private readonly trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-hy2fa-dialog');
    this.addClass('jp-hy2fa-user-dialog');
  }

  readonly inputRef = React.createRef<HTMLInputElement>();
  error = '';

  getValue(): string {
    return this.inputRef.current?.value ?? '';
  }

  render(): JSX.Element {
    const { cluster, trans } = this;
    const label = cluster.label || cluster.name;
    const id = `jp-hy2fa-user-${cluster.name}`;
    return (
      <div
        className="jp-hy2fa-field"
        data-invalid={this.error ? 'true' : undefined}
      >
        <p className="jp-hy2fa-user-why" id={`${id}-why`}>
          {trans.__(
            'Your account on %1 is often not this computer’s login name. It is kept for you, for every Lab, notebook and hy2fa command; the edit button of the row changes it.',
            label
          )}
        </p>
        <label htmlFor={id}>{trans.__('User name')}</label>
        <input
          id={id}
          ref={this.inputRef}
          className="jp-mod-styled jp-hy2fa-input"
          type="text"
          defaultValue={cluster.user ?? ''}
          autoComplete="username"
          autoCapitalize="off"
          spellCheck={false}
          aria-invalid={this.error ? true : undefined}
          aria-describedby={this.error ? `${id}-error ${id}-why` : `${id}-why`}
        />
        {this.error && (
          <div className="jp-hy2fa-field-error" id={`${id}-error`} role="alert">
            {this.error}
          </div>
        )}
      </div>
    );
  }
}

/**
 * "Your user name on Saga": Save and connect sends it (`PATCH`) and closes only once it
 * is kept; what the server refuses is said under the field and the dialog stays. Cancel
 * (Escape) saves nothing.
 */
class UserNameDialog extends Dialog<string> {
  constructor(
    options: Partial<Dialog.IOptions<string>>,
    private readonly save: (user: string) => Promise<void>,
    private readonly field: UserNameBody,
    private readonly trans: TranslationBundle
  ) {
    super(options);
  }

  resolve(index?: number): void {
    const chosen = index ?? 1;
    if (chosen !== 1) {
      super.resolve(chosen);
      return;
    }
    if (this.saving) {
      return;
    }
    const user = this.field.getValue().trim();
    if (!user) {
      this.showError(this.trans.__('Type your user name on this cluster.'));
      return;
    }
    this.saving = true;
    this.node.dataset.saving = 'true';
    this.save(user)
      .then(() => super.resolve(chosen))
      .catch(error =>
        this.showError(refusal(error).user ?? error?.message ?? String(error))
      )
      .finally(() => {
        this.saving = false;
        delete this.node.dataset.saving;
      });
  }

  private showError(message: string): void {
    this.field.error = message;
    this.field.update();
    requestAnimationFrame(() => this.field.inputRef.current?.focus());
  }

  private saving = false;
}

/**
 * Ask the person's user name on a built-in cluster for which they set none, prefilled
 * with the row's user (this computer's login name, unless something sets another), and
 * keep it. Whether it was kept (false: cancelled, nothing changed).
 */
export async function askUserName(
  model: IHy2faModel,
  cluster: ICluster,
  trans: TranslationBundle
): Promise<boolean> {
  const label = cluster.label || cluster.name;
  const body = new UserNameBody(cluster, trans);
  const dialog = new UserNameDialog(
    {
      title: trans.__('Your user name on %1', label),
      body,
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.okButton({ label: trans.__('Save and connect') })
      ],
      focusNodeSelector: 'input',
      defaultButton: 1
    },
    async user => {
      await model.setMine(cluster.name, { user });
    },
    body,
    trans
  );
  dialog.addClass('jp-hy2fa-user-name-dialog');
  dialog.node.setAttribute(
    'aria-label',
    trans.__('Your user name on %1', label)
  );
  dialog.node.dataset.hy2faCluster = cluster.name;
  const result = await dialog.launch();
  dialog.dispose();
  return result.button.accept;
}

/**
 * Connect to a cluster as a person asked for it (the sidebar's Connect, the palette):
 * the first time on a built-in cluster whose user name the person never gave, ask it
 * first ({@link askUserName}); cancelled, nothing connects (null).
 */
export async function connectAsking(
  model: IHy2faModel,
  cluster: ICluster,
  trans: TranslationBundle
): Promise<IConnection | null> {
  if (needsUserName(cluster) && !(await askUserName(model, cluster, trans))) {
    return null;
  }
  return model.connect(cluster.name);
}
