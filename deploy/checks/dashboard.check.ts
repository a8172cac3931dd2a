// tsc --noEmit --strict (deploy/checks/grafana-check.sh): the provisioned dashboard against
// @grafana/schema's Dashboard type. The JSON module import checks field types; the generated
// .gen/dashboard_literal.ts (the same JSON as an object literal) also rejects unknown fields
// and checks literal unions, which a widened JSON import cannot.
import type { Dashboard } from '@grafana/schema';
import dashboardJson from '../compose/grafana/dashboards/kvcomp.json';

export const imported: Dashboard = dashboardJson;
