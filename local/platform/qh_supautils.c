/*
 * qh_supautils: the local stack's stand-in for the part of Supabase's supautils that decides what
 * the non-superuser `postgres` role may do on a hosted project. Written for Queue Health from the
 * documented behaviour (supabase/postgres ansible/files/postgresql_config/supautils.conf.j2); it
 * shares no code with supautils.
 *
 * Loaded through shared_preload_libraries by the local stack only. What it does, for the role
 * named by qh_supautils.privileged_role (postgres) when it is not a superuser:
 *
 *  - policy_grants: CREATE / ALTER / DROP POLICY on the tables listed in qh_supautils.policy_grants
 *    (e.g. realtime.messages) run as the superuser, as supautils does. Nothing else about those
 *    tables changes: COMMENT ON POLICY, ALTER TABLE, DELETE … keep PostgreSQL's own checks, so
 *    they fail as they do on hosted projects whose supautils predates 3.3.
 *  - privileged_extensions: CREATE EXTENSION / DROP EXTENSION of the extensions listed in
 *    qh_supautils.privileged_extensions run as the superuser (qh_supautils.superuser), so their
 *    objects belong to it, as on hosted.
 *  - reserved_roles: ALTER ROLE, DROP ROLE and ALTER ROLE … RENAME of the roles listed in
 *    qh_supautils.reserved_roles are refused (a trailing '*' allows ALTER ROLE … SET).
 *
 * Everything else goes through PostgreSQL's normal privilege checks.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "catalog/namespace.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void _PG_init(void);

static ProcessUtility_hook_type prev_process_utility = NULL;

static char *privileged_role = NULL;
static char *superuser_name = NULL;
static char *policy_grants = NULL;
static char *privileged_extensions = NULL;
static char *reserved_roles = NULL;

/*
 * Whether `item` is in the comma-separated `list` (spaces around items ignored). With
 * `wildcard` non-null, an entry ending in '*' matches its name exactly and sets *wildcard.
 */
static bool
list_has(const char *list, const char *item, bool *wildcard)
{
	const char *p = list;
	size_t		item_len = strlen(item);

	if (wildcard)
		*wildcard = false;
	if (list == NULL || item == NULL)
		return false;
	while (*p)
	{
		const char *start;
		const char *end;
		size_t		len;
		bool		star = false;

		while (*p == ' ' || *p == ',')
			p++;
		start = p;
		while (*p && *p != ',')
			p++;
		end = p;
		while (end > start && end[-1] == ' ')
			end--;
		if (end > start && end[-1] == '*')
		{
			star = true;
			end--;
		}
		len = end - start;
		if (len > 0 && len == item_len && strncmp(start, item, len) == 0)
		{
			if (wildcard)
				*wildcard = star;
			return true;
		}
	}
	return false;
}

/* True when the current user is the privileged role and not a superuser. */
static bool
acting_as_privileged_role(void)
{
	char	   *name;

	if (privileged_role == NULL || privileged_role[0] == '\0' || superuser())
		return false;
	name = GetUserNameFromId(GetUserId(), true);
	return name != NULL && strcmp(name, privileged_role) == 0;
}

/* "schema.table" of a RangeVar; an unqualified name is looked for as given. */
static bool
policy_table_granted(RangeVar *rel)
{
	char	   *qualified;

	if (rel == NULL)
		return false;
	if (rel->schemaname)
		qualified = psprintf("%s.%s", rel->schemaname, rel->relname);
	else
		qualified = pstrdup(rel->relname);
	return list_has(policy_grants, qualified, NULL);
}

/* DROP POLICY name ON [schema.]table: each object is a list of names, the policy's last. */
static bool
drop_policy_granted(DropStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->objects)
	{
		List	   *names = (List *) lfirst(lc);
		List	   *table = list_truncate(list_copy(names), list_length(names) - 1);

		if (!policy_table_granted(makeRangeVarFromNameList(table)))
			return false;
	}
	return stmt->objects != NIL;
}

static bool
drop_extension_granted(DropStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->objects)
	{
		if (!list_has(privileged_extensions, strVal(lfirst(lc)), NULL))
			return false;
	}
	return stmt->objects != NIL;
}

/* Refuses changes to reserved roles, as supautils does. */
static void
check_reserved_role(const char *role, bool is_set)
{
	bool		wildcard;

	if (role == NULL || !list_has(reserved_roles, role, &wildcard))
		return;
	if (is_set && wildcard)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("\"%s\" is a reserved role, only superusers can modify it", role)));
}

static const char *
role_spec_name(RoleSpec *spec)
{
	if (spec == NULL || spec->roletype != ROLESPEC_CSTRING)
		return NULL;
	return spec->rolename;
}

static void
qh_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				   ProcessUtilityContext context, ParamListInfo params,
				   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *node = pstmt->utilityStmt;
	bool		elevate = false;

	if (acting_as_privileged_role())
	{
		switch (nodeTag(node))
		{
			case T_CreatePolicyStmt:
				elevate = policy_table_granted(((CreatePolicyStmt *) node)->table);
				break;
			case T_AlterPolicyStmt:
				elevate = policy_table_granted(((AlterPolicyStmt *) node)->table);
				break;
			case T_CreateExtensionStmt:
				elevate = list_has(privileged_extensions,
								   ((CreateExtensionStmt *) node)->extname, NULL);
				break;
			case T_DropStmt:
				{
					DropStmt   *drop = (DropStmt *) node;

					if (drop->removeType == OBJECT_POLICY)
						elevate = drop_policy_granted(drop);
					else if (drop->removeType == OBJECT_EXTENSION)
						elevate = drop_extension_granted(drop);
					break;
				}
			case T_AlterRoleStmt:
				check_reserved_role(role_spec_name(((AlterRoleStmt *) node)->role), false);
				break;
			case T_AlterRoleSetStmt:
				check_reserved_role(role_spec_name(((AlterRoleSetStmt *) node)->role), true);
				break;
			case T_DropRoleStmt:
				{
					ListCell   *lc;

					foreach(lc, ((DropRoleStmt *) node)->roles)
						check_reserved_role(role_spec_name((RoleSpec *) lfirst(lc)), false);
					break;
				}
			case T_RenameStmt:
				if (((RenameStmt *) node)->renameType == OBJECT_ROLE)
					check_reserved_role(((RenameStmt *) node)->subname, false);
				break;
			default:
				break;
		}
	}

	if (elevate)
	{
		Oid			saved_user;
		int			saved_context;
		Oid			admin = get_role_oid(superuser_name, false);

		GetUserIdAndSecContext(&saved_user, &saved_context);
		SetUserIdAndSecContext(admin, saved_context | SECURITY_LOCAL_USERID_CHANGE);
		PG_TRY();
		{
			if (prev_process_utility)
				prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
									 queryEnv, dest, qc);
			else
				standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
										queryEnv, dest, qc);
		}
		PG_FINALLY();
		{
			SetUserIdAndSecContext(saved_user, saved_context);
		}
		PG_END_TRY();
		return;
	}

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv,
							 dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv,
								dest, qc);
}

void
_PG_init(void)
{
	DefineCustomStringVariable("qh_supautils.privileged_role",
							   "The non-superuser role that policy_grants and "
							   "privileged_extensions apply to.",
							   NULL, &privileged_role, "postgres", PGC_SIGHUP, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("qh_supautils.superuser",
							   "The superuser that granted statements run as.",
							   NULL, &superuser_name, "supabase_admin", PGC_SIGHUP, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("qh_supautils.policy_grants",
							   "Tables (schema.table, comma-separated) whose policies the "
							   "privileged role may create, alter and drop.",
							   NULL, &policy_grants, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("qh_supautils.privileged_extensions",
							   "Extensions the privileged role may create and drop; they are "
							   "created by the superuser.",
							   NULL, &privileged_extensions, "", PGC_SIGHUP, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("qh_supautils.reserved_roles",
							   "Roles only superusers may alter, rename or drop ('*': ALTER "
							   "ROLE … SET allowed).",
							   NULL, &reserved_roles, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("qh_supautils");

	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = qh_process_utility;
}
