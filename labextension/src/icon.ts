/** The panel's icon: a "V" in a rounded square, coloured like Lab's other icons. */
import { LabIcon } from '@jupyterlab/ui-components';

const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M4 2h16a2 2 0 0 1 2 2v16a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm1.6 4 5.2 12h2.4l5.2-12h-2.6L12 15.2 8.2 6z"/>
  </g>
</svg>`;

export const valohaiIcon = new LabIcon({
  name: 'jupyter-valohai:logo',
  svgstr
});
