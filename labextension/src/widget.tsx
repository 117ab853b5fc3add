/** The sidebar widget: a ReactWidget around the Panel component. */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ReactWidget } from '@jupyterlab/apputils';
import React from 'react';

import { Panel } from './components/Panel';
import { valohaiIcon } from './icon';
import { PanelModel } from './model';

export class ValohaiSidebar extends ReactWidget {
  constructor(
    readonly model: PanelModel,
    private readonly app: JupyterFrontEnd
  ) {
    super();
    this.id = 'jupyter-valohai-sidebar';
    this.addClass('jp-Valohai');
    this.title.icon = valohaiIcon;
    this.title.caption = 'Valohai: run notebooks, watch executions';
  }

  protected render(): JSX.Element {
    return <Panel model={this.model} app={this.app} />;
  }
}
