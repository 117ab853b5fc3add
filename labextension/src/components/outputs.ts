/** The outputs of the execution shown in detail: list them, open one in Lab, download one. */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { useEffect, useRef, useState } from 'react';

import { api } from '../api';
import { errorMessage } from '../errors';
import { IDatum } from '../types';

export interface IOutputs {
  outputs: IDatum[] | null;
  error: string;
  load: () => void;
  /** Copy the output into Lab's root (valohai-outputs/...) and open it there. */
  open: (datum: IDatum) => Promise<void>;
  /** Copy the output into Lab's root and let the browser download it from /files/. */
  download: (datum: IDatum) => Promise<void>;
}

export function useOutputs(
  executionId: string | null,
  app: JupyterFrontEnd
): IOutputs {
  const [outputs, setOutputs] = useState<IDatum[] | null>(null);
  const [error, setError] = useState('');
  const current = useRef(executionId);
  current.current = executionId;

  useEffect(() => {
    setOutputs(null);
    setError('');
  }, [executionId]);

  const load = (): void => {
    const id = executionId;
    if (!id) {
      return;
    }
    api.outputs(id).then(
      list => id === current.current && setOutputs(list),
      e => setError(errorMessage(e))
    );
  };

  /** The output's path in Lab's root, once the server has saved it there. */
  const fetchOutput = async (datum: IDatum): Promise<string | null> => {
    if (!executionId) {
      return null;
    }
    try {
      return (await api.fetchOutput(executionId, datum.id)).path;
    } catch (e) {
      setError(errorMessage(e));
      return null;
    }
  };

  const open = async (datum: IDatum): Promise<void> => {
    const path = await fetchOutput(datum);
    if (path) {
      await app.commands.execute('docmanager:open', { path });
    }
  };

  const download = async (datum: IDatum): Promise<void> => {
    const path = await fetchOutput(datum);
    if (path) {
      const link = document.createElement('a');
      link.href = URLExt.join(
        ServerConnection.makeSettings().baseUrl,
        'files',
        URLExt.encodeParts(path)
      );
      link.download = path.split('/').pop() ?? path;
      document.body.appendChild(link);
      link.click();
      link.remove();
    }
  };

  return { outputs, error, load, open, download };
}
