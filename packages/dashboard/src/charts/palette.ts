/**
 * Series colours: Okabe–Ito (distinguishable with the common colour-vision deficiencies), ordered
 * so neighbours in a stack differ in lightness too; per theme so each keeps ≥ 3:1 against the
 * background. "Other" is always neutral grey. The heat map uses a single-hue sequential scale.
 */
export type ThemeName = 'light' | 'dark';

export interface ChartTheme {
  name: ThemeName;
  text: string;
  subtleText: string;
  axisLine: string;
  splitLine: string;
  tooltipBg: string;
  tooltipText: string;
  tooltipBorder: string;
  series: readonly string[];
  other: string;
  heat: readonly string[];
  segmentBorder: string;
  /** Chart text size in px: follows the page's root size, so a wall screen stays readable. */
  fontSize: number;
}

export const THEMES: Record<ThemeName, ChartTheme> = {
  light: {
    name: 'light',
    text: '#1f2328',
    subtleText: '#57606a',
    axisLine: '#8c959f',
    splitLine: '#e6e8eb',
    tooltipBg: '#ffffff',
    tooltipText: '#1f2328',
    tooltipBorder: '#d0d7de',
    series: [
      '#0072B2',
      '#E69F00',
      '#009E73',
      '#CC79A7',
      '#56B4E9',
      '#D55E00',
      '#8F7C00',
      '#6A51A3',
    ],
    other: '#9aa0a6',
    heat: ['#f1f7fd', '#c6dbef', '#6baed6', '#2171b5', '#08306b'],
    segmentBorder: '#ffffff',
    fontSize: 12,
  },
  dark: {
    name: 'dark',
    text: '#e6edf3',
    subtleText: '#9da7b3',
    axisLine: '#6e7681',
    splitLine: '#2d333b',
    tooltipBg: '#1c2128',
    tooltipText: '#e6edf3',
    tooltipBorder: '#444c56',
    series: [
      '#56B4E9',
      '#E69F00',
      '#2CC295',
      '#E08FC0',
      '#3D8FD1',
      '#F0743A',
      '#F0E442',
      '#B39DDB',
    ],
    other: '#768390',
    heat: ['#1b2631', '#17456b', '#1f6fb0', '#4aa3df', '#b9e0fb'],
    segmentBorder: '#0d1117',
    fontSize: 12,
  },
};

export function seriesColor(theme: ChartTheme, index: number, other: boolean): string {
  return other ? theme.other : (theme.series[index % theme.series.length] as string);
}
