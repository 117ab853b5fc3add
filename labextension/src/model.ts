/** What the Lab side tells the panel: the notebook to run, and "open the run form" requests. */
import { NotebookPanel } from '@jupyterlab/notebook';
import { ISignal, Signal } from '@lumino/signaling';

export class PanelModel {
  private _notebook: NotebookPanel | null = null;
  private _notebookChanged = new Signal<this, NotebookPanel | null>(this);
  private _runRequested = new Signal<this, NotebookPanel>(this);
  private _saved = new Signal<this, string>(this);

  /** The notebook the run form is for (the one last active in Lab). */
  get notebook(): NotebookPanel | null {
    return this._notebook;
  }

  set notebook(panel: NotebookPanel | null) {
    if (panel === this._notebook) {
      return;
    }
    this._notebook?.context.saveState.disconnect(this._onSaveState, this);
    this._notebook = panel;
    panel?.context.saveState.connect(this._onSaveState, this);
    this._notebookChanged.emit(panel);
  }

  get notebookChanged(): ISignal<this, NotebookPanel | null> {
    return this._notebookChanged;
  }

  /** Emitted when the notebook toolbar's button asks to run a notebook. */
  get runRequested(): ISignal<this, NotebookPanel> {
    return this._runRequested;
  }

  /** Emitted with the notebook's path after it was saved (its parameters may have changed). */
  get saved(): ISignal<this, string> {
    return this._saved;
  }

  requestRun(panel: NotebookPanel): void {
    this.notebook = panel;
    this._runRequested.emit(panel);
  }

  private _onSaveState(_: unknown, state: string): void {
    if (state === 'completed' && this._notebook) {
      this._saved.emit(this._notebook.context.path);
    }
  }
}
