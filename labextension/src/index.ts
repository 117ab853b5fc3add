/**
 * jupyter-valohai's JupyterLab extension: a sidebar to run the open notebook on a
 * Valohai-compatible master and watch its executions live, and a notebook toolbar button.
 */
import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, ToolbarButton } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import {
  INotebookModel,
  INotebookTracker,
  NotebookPanel
} from '@jupyterlab/notebook';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';

import { valohaiIcon } from './icon';
import { PanelModel } from './model';
import { ValohaiSidebar } from './widget';

export const PLUGIN_ID = 'jupyter-valohai:plugin';

export namespace CommandIDs {
  export const open = 'valohai:open';
  export const runNotebook = 'valohai:run-notebook';
}

/** The "Run on Valohai" button of every notebook's toolbar. */
class RunButtonExtension implements DocumentRegistry.IWidgetExtension<
  NotebookPanel,
  INotebookModel
> {
  constructor(private readonly app: JupyterFrontEnd) {}

  createNew(panel: NotebookPanel): IDisposable {
    const button = new ToolbarButton({
      className: 'jp-Valohai-toolbarButton',
      icon: valohaiIcon,
      label: 'Valohai',
      tooltip: 'Run this notebook on Valohai',
      onClick: () => {
        void this.app.commands.execute(CommandIDs.runNotebook, {
          path: panel.context.path
        });
      }
    });
    panel.toolbar.insertItem(10, 'valohai-run', button);
    return new DisposableDelegate(() => button.dispose());
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Run notebooks on a Valohai-compatible master and watch executions live.',
  autoStart: true,
  requires: [ILabShell, INotebookTracker],
  optional: [ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    notebooks: INotebookTracker,
    palette: ICommandPalette | null
  ): void => {
    const model = new PanelModel();
    const sidebar = new ValohaiSidebar(model, app);
    shell.add(sidebar, 'left', { rank: 850 });

    model.notebook = notebooks.currentWidget;
    notebooks.currentChanged.connect((_, panel) => {
      if (panel) {
        model.notebook = panel; // keep the last notebook while other documents are active
      }
    });
    notebooks.widgetAdded.connect((_, panel) => {
      panel.disposed.connect(() => {
        if (model.notebook === panel) {
          model.notebook = notebooks.currentWidget;
        }
      });
    });

    app.commands.addCommand(CommandIDs.open, {
      label: 'Open the Valohai panel',
      icon: valohaiIcon,
      execute: () => shell.activateById(sidebar.id)
    });
    app.commands.addCommand(CommandIDs.runNotebook, {
      label: 'Run this notebook on Valohai…',
      icon: valohaiIcon,
      isEnabled: () => notebooks.currentWidget !== null,
      execute: args => {
        const path = typeof args.path === 'string' ? args.path : undefined;
        const panel =
          notebooks.find(p => p.context.path === path) ??
          notebooks.currentWidget;
        if (!panel) {
          return;
        }
        shell.activateById(sidebar.id);
        model.requestRun(panel);
      }
    });
    palette?.addItem({ command: CommandIDs.open, category: 'Valohai' });
    palette?.addItem({ command: CommandIDs.runNotebook, category: 'Valohai' });
    app.docRegistry.addWidgetExtension('Notebook', new RunButtonExtension(app));
  }
};

export default plugin;
