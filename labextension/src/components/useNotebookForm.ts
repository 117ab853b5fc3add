/**
 * The run form of the current notebook: its parameters and inputs (read again when the notebook
 * is saved, values carried over), the values typed, their errors, the title, and the prefill
 * from an execution (re-run with changes).
 */
import { useCallback, useEffect, useRef, useState } from 'react';

import { api } from '../api';
import { errorMessage } from '../errors';
import {
  carryOver,
  formSpec,
  IFormErrors,
  IFormSpec,
  IFormValues,
  initialValues,
  prefillFrom
} from '../form';
import { PanelModel } from '../model';
import { IDescribeExecution } from '../types';
import { useSignal } from './hooks';

export const NO_ERRORS: IFormErrors = { parameters: {}, inputs: {} };
const EMPTY_VALUES: IFormValues = { parameters: {}, inputs: {} };

export interface INotebookForm {
  notebookPath: string | null;
  setNotebookPath: (path: string | null) => void;
  spec: IFormSpec | null;
  specError: string;
  values: IFormValues;
  setValues: (values: IFormValues) => void;
  errors: IFormErrors;
  setErrors: (errors: IFormErrors) => void;
  title: string;
  setTitle: (title: string) => void;
  prefilledFrom: string;
  setPrefilledFrom: (from: string) => void;
  /** Open `path`'s form, then prefill it from `execution` once it is loaded. */
  prefillAfterLoad: (path: string, execution: IDescribeExecution) => void;
  /** The form's defaults again. */
  reset: () => void;
}

export function useNotebookForm(model: PanelModel): INotebookForm {
  const [notebookPath, setNotebookPath] = useState<string | null>(
    model.notebook?.context.path ?? null
  );
  const [spec, setSpec] = useState<IFormSpec | null>(null);
  const [specError, setSpecError] = useState('');
  const [values, setValues] = useState<IFormValues>(EMPTY_VALUES);
  const [errors, setErrors] = useState<IFormErrors>(NO_ERRORS);
  const [title, setTitle] = useState('');
  const [prefilledFrom, setPrefilledFrom] = useState('');

  const specRef = useRef<IFormSpec | null>(null);
  /** An execution to prefill the form from once its notebook's form is loaded (re-run). */
  const prefillRef = useRef<IDescribeExecution | null>(null);
  const valuesRef = useRef(values);
  valuesRef.current = values;

  const loadSpec = useCallback(
    async (path: string | null, keepValues: boolean): Promise<void> => {
      setSpecError('');
      if (!path) {
        specRef.current = null;
        setSpec(null);
        return;
      }
      try {
        const next = formSpec(await api.notebookParameters(path));
        const previous = specRef.current;
        const prefill = prefillRef.current;
        prefillRef.current = null;
        if (prefill && !keepValues) {
          setValues(initialValues(next, prefillFrom(next, prefill)));
        } else {
          setValues(
            keepValues && previous
              ? carryOver(previous, next, valuesRef.current)
              : initialValues(next)
          );
          if (!keepValues) {
            setPrefilledFrom('');
          }
        }
        specRef.current = next;
        setSpec(next);
        setErrors(NO_ERRORS);
      } catch (e) {
        setSpecError(errorMessage(e));
      }
    },
    []
  );

  useEffect(() => {
    void loadSpec(notebookPath, false);
  }, [notebookPath, loadSpec]);

  useSignal(model.notebookChanged, panel =>
    setNotebookPath(panel?.context.path ?? null)
  );
  useSignal(model.saved, path => {
    if (path === notebookPath) {
      void loadSpec(path, true);
    }
  });

  return {
    notebookPath,
    setNotebookPath,
    spec,
    specError,
    values,
    setValues,
    errors,
    setErrors,
    title,
    setTitle,
    prefilledFrom,
    setPrefilledFrom,
    prefillAfterLoad: (path, execution) => {
      prefillRef.current = execution;
      setNotebookPath(path);
    },
    reset: () => {
      if (spec) {
        setValues(initialValues(spec));
      }
      setPrefilledFrom('');
    }
  };
}
