from accounts.schemas import NonEmptyStr, RequestBody


class CreateClassBody(RequestBody):
    className: NonEmptyStr


class AddStudentBody(RequestBody):
    studentId: NonEmptyStr
