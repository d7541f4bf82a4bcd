import { render } from 'preact';
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { App } from './app/App';
import { applyStoredTheme } from './app/theme';

applyStoredTheme();
render(<App />, document.getElementById('app')!);
