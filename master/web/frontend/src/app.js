// The pages' only script: each page's behaviour, picked by <body data-page>.
import 'uplot/dist/uPlot.min.css';
import { startExecutionPage } from './execution.js';
import { startExecutionsTable } from './table.js';
import { startComparePage } from './compare.js';
import { startEndpointPage } from './endpoint.js';
import { startEnvironmentsPage } from './environments.js';

const pages = {
  execution: startExecutionPage,
  executions: startExecutionsTable,
  compare: startComparePage,
  endpoint: startEndpointPage,
  environments: startEnvironmentsPage,
};

function start() {
  const start = pages[document.body.dataset.page];
  if (start) {
    start();
  }
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', start);
} else {
  start();
}
