"""A fresh challenge on the real EvalAI server, for one end-to-end run (stdlib + Django).

Runs inside the real server's venv (Python 3.9), with the environment boot.sh gives
../shared/evalai-real/fixtures.py, whose pattern it copies; tests/servers/real_evalai.py
starts it:

    cd $RUNTIME/EvalAI && ../venv/bin/python real_evalai_challenge.py TAG TASKS OUT.json

Why not the boot fixture's challenge 1: other tests PUT results on its leaderboards and the
server keeps them between runs, so "every team once, in our order" could not hold there.
This challenge is new for every TAG and otherwise the same: hosted by host1's team, remote
evaluation, phases dev and final with split `test`. Its dev leaderboard has challenge 1's
schema (the boot's: Rank, Weighted score, Mean Q); the final phase reveals its tasks, so
its leaderboard adds one label per task (TASKS, comma-separated), as README.md tells an
organiser. Teams: the boot's probeboard-team-1 and -2 and probeboard-team-3
(participant3), each one user, all joined. OUT.json gets pks, schemas and the
participants' JWTs (the same stored token each call, ../shared/spec/evalai-api.md §1).
"""

import datetime
import json
import os
import sys
import urllib.request

sys.path.insert(0, os.getcwd())  # the EvalAI checkout (settings/, apps/)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "localsettings")

import django

django.setup()

from allauth.account.models import EmailAddress  # noqa: E402
from challenges.models import (  # noqa: E402
    Challenge,
    ChallengePhase,
    ChallengePhaseSplit,
    DatasetSplit,
    Leaderboard,
)
from django.contrib.auth.models import User  # noqa: E402
from django.utils import timezone  # noqa: E402
from hosts.models import ChallengeHostTeam  # noqa: E402
from participants.models import Participant, ParticipantTeam  # noqa: E402

TEAMS = 3
PASSWORD = "password"  # the boot fixture's
SERVER = "http://127.0.0.1:{}".format(os.environ.get("EVALAI_REAL_PORT", "8000"))


def make_user(username):
    email = f"{username}@example.com"
    user, created = User.objects.get_or_create(username=username, defaults={"email": email})
    if created:
        user.set_password(PASSWORD)
        user.save()
    EmailAddress.objects.update_or_create(
        user=user, email=email, defaults={"verified": True, "primary": True})
    return user


def jwt(username):
    """Log in, then the profile page's "Get your Auth Token" (what participants paste)."""
    def call(method, path, token=None, data=None):
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if token:
            headers["Authorization"] = "Token " + token
        body = json.dumps(data).encode() if data is not None else None
        request = urllib.request.Request(SERVER + path, data=body, headers=headers,
                                         method=method)
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read().decode())

    key = call("POST", "/api/auth/login", data={"username": username, "password": PASSWORD})
    return call("GET", "/api/accounts/user/get_auth_token", token=key["token"])["token"]


def main(tag, tasks, out):
    boot = Challenge.objects.get(queue="probeboard-test")  # the boot fixture's challenge 1
    boot_split = ChallengePhaseSplit.objects.get(challenge_phase__challenge=boot,
                                                 challenge_phase__codename="dev")
    schema = boot_split.leaderboard.schema
    revealed = dict(schema, labels=list(schema["labels"]) + tasks)
    host_team = ChallengeHostTeam.objects.get(team_name="probeboard-host-team")
    now = timezone.now()
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=365)
    queue = f"probeboard-e2e-{tag}"
    challenge = Challenge.objects.create(
        title=f"Probeboard end to end {tag}",
        short_description="End-to-end test of the probeboard daemon",
        description="End-to-end test of the probeboard daemon",
        terms_and_conditions="none", submission_guidelines="Upload a CSV file.",
        evaluation_details="Evaluated by a remote worker.", creator=host_team,
        start_date=start, end_date=end, published=True, approved_by_admin=True,
        is_registration_open=True, remote_evaluation=True, queue=queue,
        is_docker_based=False,
    )
    split, _ = DatasetSplit.objects.get_or_create(codename="test", defaults={"name": "Test"})
    phases, phase_splits, schemas = {}, {}, {}
    for codename, phase_schema in (("dev", schema), ("final", revealed)):
        phase = ChallengePhase.objects.create(
            challenge=challenge, codename=codename, name=f"{codename.title()} phase",
            description=f"{codename} phase", leaderboard_public=True, is_public=True,
            is_submission_public=True, start_date=start, end_date=end,
            max_submissions_per_day=100000, max_submissions_per_month=100000,
            max_submissions=100000, max_concurrent_submissions_allowed=1000,
        )
        phase_split = ChallengePhaseSplit.objects.create(
            challenge_phase=phase, dataset_split=split,
            leaderboard=Leaderboard.objects.create(schema=phase_schema),
            visibility=ChallengePhaseSplit.PUBLIC,
        )
        phases[codename], phase_splits[codename] = phase.pk, phase_split.pk
        schemas[codename] = phase_schema
    participants = []
    for i in range(1, TEAMS + 1):
        user = make_user(f"participant{i}")
        team, _ = ParticipantTeam.objects.get_or_create(
            team_name=f"probeboard-team-{i}", defaults={"created_by": user})
        Participant.objects.get_or_create(user=user, team=team,
                                          defaults={"status": Participant.SELF})
        challenge.participant_teams.add(team)
        participants.append({"username": user.username, "team_name": team.team_name,
                             "jwt": jwt(user.username)})
    result = {"challenge_pk": challenge.pk, "queue": queue, "phase_pks": phases,
              "phase_split_pks": phase_splits, "schemas": schemas,
              "participants": participants}
    with open(out, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1], [t for t in sys.argv[2].split(",") if t], sys.argv[3])
