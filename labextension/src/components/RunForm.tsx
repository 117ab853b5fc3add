/** "Run this notebook": the form generated from the notebook's parameters cell, and inputs. */
import React from 'react';

import { IFormErrors, IFormSpec, IFormValues, IParameterField } from '../form';

const TYPE_HINT: Record<string, string> = {
  integer: 'integer',
  float: 'number',
  string: 'text',
  flag: 'true/false'
};

function ParameterInput(props: {
  field: IParameterField;
  value: string | boolean | undefined;
  error?: string;
  onChange: (value: string | boolean) => void;
}): JSX.Element {
  const { field, value, error } = props;
  const id = `jp-Valohai-param-${field.name}`;
  const defaultText =
    field.type === 'flag'
      ? String(Boolean(field.default))
      : JSON.stringify(field.default);
  return (
    <div
      className={`jp-Valohai-field${error ? ' jp-Valohai-field-invalid' : ''}`}
      data-param={field.name}
    >
      <label htmlFor={id} className="jp-Valohai-fieldLabel">
        {field.name}{' '}
        <span className="jp-Valohai-type">{TYPE_HINT[field.type]}</span>
      </label>
      {field.type === 'flag' ? (
        <input
          id={id}
          type="checkbox"
          name={field.name}
          checked={Boolean(value)}
          onChange={event => props.onChange(event.target.checked)}
        />
      ) : (
        <input
          id={id}
          className="jp-Valohai-input"
          name={field.name}
          inputMode={field.type === 'string' ? 'text' : 'decimal'}
          value={typeof value === 'string' ? value : ''}
          aria-invalid={Boolean(error)}
          onChange={event => props.onChange(event.target.value)}
        />
      )}
      <span className="jp-Valohai-default">default {defaultText}</span>
      {error && <div className="jp-Valohai-fieldError">{error}</div>}
    </div>
  );
}

export interface IRunFormProps {
  notebookPath: string | null;
  spec: IFormSpec | null;
  /** Why the parameters could not be read (shown instead of the fields). */
  specError: string;
  values: IFormValues;
  errors: IFormErrors;
  title: string;
  busy: boolean;
  canRun: boolean;
  /** Set when the form was prefilled from an execution ("re-run with changes"). */
  prefilledFrom: string;
  onValues: (values: IFormValues) => void;
  onTitle: (title: string) => void;
  onRun: () => void;
  onReset: () => void;
}

export function RunForm(props: IRunFormProps): JSX.Element {
  const { spec, values, errors } = props;
  const setParameter = (name: string, value: string | boolean): void =>
    props.onValues({
      ...values,
      parameters: { ...values.parameters, [name]: value }
    });
  const setInput = (name: string, text: string): void =>
    props.onValues({ ...values, inputs: { ...values.inputs, [name]: text } });

  if (!props.notebookPath) {
    return (
      <div className="jp-Valohai-section jp-Valohai-run">
        <h3 className="jp-Valohai-heading">Run this notebook</h3>
        <div className="jp-Valohai-note">
          Open a notebook to run it on Valohai.
        </div>
      </div>
    );
  }
  return (
    <form
      className="jp-Valohai-section jp-Valohai-run"
      onSubmit={event => {
        event.preventDefault();
        props.onRun();
      }}
    >
      <h3 className="jp-Valohai-heading">
        Run <span className="jp-Valohai-path">{props.notebookPath}</span>
      </h3>
      {props.prefilledFrom && (
        <div className="jp-Valohai-note">
          Prefilled from {props.prefilledFrom}.{' '}
          <button
            type="button"
            className="jp-Valohai-linkButton"
            onClick={props.onReset}
          >
            Back to the notebook's defaults
          </button>
        </div>
      )}
      {props.specError && (
        <div className="jp-Valohai-error">{props.specError}</div>
      )}
      {spec && !spec.parameters.length && !props.specError && (
        <div className="jp-Valohai-note">
          No parameters: tag a cell <code>parameters</code> to get a form here.
        </div>
      )}
      {spec?.parameters.map(field => (
        <ParameterInput
          key={field.name}
          field={field}
          value={values.parameters[field.name]}
          error={errors.parameters[field.name]}
          onChange={value => setParameter(field.name, value)}
        />
      ))}
      {spec && spec.inputs.length > 0 && (
        <h4 className="jp-Valohai-subheading">Inputs</h4>
      )}
      {spec?.inputs.map(field => (
        <div
          key={field.name}
          className={`jp-Valohai-field${errors.inputs[field.name] ? ' jp-Valohai-field-invalid' : ''}`}
          data-input={field.name}
        >
          <label
            htmlFor={`jp-Valohai-input-${field.name}`}
            className="jp-Valohai-fieldLabel"
          >
            {field.name} <span className="jp-Valohai-type">one URI a line</span>
          </label>
          <textarea
            id={`jp-Valohai-input-${field.name}`}
            className="jp-Valohai-input jp-Valohai-textarea"
            rows={Math.max(
              2,
              (values.inputs[field.name] ?? '').split('\n').length
            )}
            value={values.inputs[field.name] ?? ''}
            onChange={event => setInput(field.name, event.target.value)}
          />
          {errors.inputs[field.name] && (
            <div className="jp-Valohai-fieldError">
              {errors.inputs[field.name]}
            </div>
          )}
        </div>
      ))}
      <label className="jp-Valohai-row">
        <span className="jp-Valohai-label">Title</span>
        <input
          className="jp-Valohai-input"
          aria-label="Execution title"
          placeholder="(optional)"
          value={props.title}
          onChange={event => props.onTitle(event.target.value)}
        />
      </label>
      <button
        type="submit"
        className="jp-Valohai-button jp-Valohai-runButton"
        disabled={props.busy || !props.canRun}
      >
        {props.busy ? 'Sending…' : 'Run on Valohai'}
      </button>
    </form>
  );
}
